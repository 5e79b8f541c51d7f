"""Metric exporters for the fleet path: a Prometheus scrape endpoint and InfluxDB.

``prometheus`` (a ``/metrics`` endpoint), ``influxdb`` (writes line protocol, see
``line_protocol``; settings in ``influxdb_settings``) and ``fanout`` (one reader feeding
several exporters). Each is imported only when used, so the optional dependencies
(``opentelemetry-exporter-prometheus``, ``influxdb-client``) are needed only by the users
who enable them.
"""
