"""Topic values at the edge of the stream, one module per concern.

- ``kinds``: the topic kinds (each topic's name without the agency prefix);
- ``times``: strict dates and RFC 3339 date-times, the Central date of an event;
- ``schema``: the JSON Schemas, validation, ``EventError``;
- ``problems``: the one-line wording of what is wrong with a value;
- ``model``: the typed, frozen input events (``Event``);
- ``codec``: input events from and to topic values (``parse_event``, ``dumps_event``);
- ``records``: the output records (``schedule-changes``, ``deadletter``).
"""
