"""The `writegate` sub-commands, each imported only when it runs."""
