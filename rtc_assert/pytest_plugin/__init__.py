"""The pytest front-end: `hooks` (the plugin's hooks, thin) and `gates` (thresholds files as
test items, and the state the hooks delegate to)."""
