"""The pure protocol core: Bull's keys, job codec, options, repeat rules and script Calls; no I/O, no clock."""
