"""Redis pub/sub channels between services (Kafka carries the events; these carry only nudges)."""

# status -> every ingest replica: a job settled; the message carries its public view.
JOB_OUTCOME = "rm:job-outcome"
