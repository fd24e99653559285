"""Reports, rendered from the run record (`rtc_assert.record.SessionRecord`) alone.

- `tables`: the rows every renderer shows; `terminal` (rich), `markdown` (summary.md and the
  GitHub step summary), `html` with `charts` and `templates/`, `sweep` (a checkpoint sweep's
  table and chart); `files` writes a report folder.
"""
