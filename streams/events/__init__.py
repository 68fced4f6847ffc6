"""Topic records: the event model, schema validation and its wording, the codec."""
