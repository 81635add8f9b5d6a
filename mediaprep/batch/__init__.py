"""Folder runs as a library call: inputs, tasks, journal, cache, parts file, runner."""
