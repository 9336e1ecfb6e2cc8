//! OTLP/HTTP metrics (in progress).
