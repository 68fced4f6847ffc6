"""The ops console: read-only web pages, their JSON twins, /metrics and the delivery webhook."""
