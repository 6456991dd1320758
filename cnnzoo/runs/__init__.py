"""The run folder: every file name in it, its typed record (metrics.json), the one-writer lock, reading runs
back, the table of runs, comparing them and drawing their curves."""
