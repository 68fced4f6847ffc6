"""The stream worker: the Faust app and its agents, the database process, the batch step, replay."""
