"""The functional core of mailwindow: pure scheduling rules.

Nothing in this package reads the clock, opens a file or a socket, or knows
about SQL or Kafka.  Every function takes the contact, the config and the
as-of date it needs and returns a decision together with its reason.
(The one exception is ``zip_state``, which reads the ZIP dataset shipped
inside the ``zipcodes`` package once, lazily: that is static reference data.)
"""
