"""Stage 6, decisions: does the candidate pass its gates?

- `stats`: intervals and tests (Wilson, Newcombe's paired interval, exact McNemar, bootstrap).
- `gates`: one gate's verdict under the decision policy; Holm across gates.
- `early_stopping`: gates decided on growing prefixes of a shuffled probe order.
- `explain`: a failed gate's examples.

Imports nothing from the front-ends, the reports, pytest, rich or a backend.
"""
