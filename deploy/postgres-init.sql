-- Run once by the postgres image when its volume is empty (deploy/compose.yaml): the
-- gateway's job and session store (jobs.database_url) in its own database, owned by its own
-- role, beside Airflow's metadata database on the same server. The gateway makes its tables.
CREATE ROLE gateway LOGIN PASSWORD 'gateway';
CREATE DATABASE gateway OWNER gateway;
