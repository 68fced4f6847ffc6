"""The shell: database store, sweep, generator and command line around the pure rules."""
