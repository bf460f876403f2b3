"""A commented sample ``gateway.toml``, generated from the settings ``gateway.config`` accepts.

``airflow-gateway sample-config`` prints it. Every accepted setting must have an entry in
:data:`SETTINGS` (the tests check both directions), so a new setting cannot be left out.
Each entry is a TOML example value and a one-line meaning; the examples are validated
by the tests with the setting's own validator.
"""

from __future__ import annotations

from gateway.config import setting_names

SECTIONS: dict[str, str] = {
    "gateway": "The gateway process itself.",
    "airflow": "The Airflow CLI the gateway drives (same AIRFLOW_HOME / AIRFLOW__* as your Airflow).",
    "cli": "Limits for Airflow CLI subprocesses.",
    "rest_api_plugin": "The original airflow-rest-api-plugin's settings, under their original names.",
    "proxy": "Every path the gateway does not own goes to Airflow's api-server / webserver.",
    "limits": "Request size limits on the gateway's own endpoints (413 beyond them).",
    "audit": "One JSON audit event per request (stdout unless a file is set).",
    "metrics": "Prometheus /metrics.",
    "auth": "Gateway credentials: named tokens (see docs/identity-and-policies.md).",
    "jwt": "JWT verification; off while algorithms is empty. Set exactly one key source.",
    "policy": "Policies (see docs/identity-and-policies.md); without them every authenticated call passes.",
    "deploy": "deploy_dag uploads (see docs/deploy-and-page.md).",
    "jobs": "CLI calls run as jobs (mode=job; see docs/jobs.md).",
}

# (section, key) -> (TOML example value, meaning).  Defaults are in gateway/config.py.
SETTINGS: dict[tuple[str, str], tuple[str, str]] = {
    ("gateway", "state_dir"): (
        '"/var/lib/airflow-gateway"',
        "daemons' records and logs, import/export files, the CLI's working directory (default .state)",
    ),
    ("gateway", "trusted_proxy_count"): (
        "1",
        "proxies in front whose X-Forwarded-For is trusted (default 0)",
    ),
    ("airflow", "executable"): (
        '"/home/airflow/.local/bin/airflow"',
        "the Airflow CLI (default: airflow on PATH)",
    ),
    ("airflow", "home"): ('"/opt/airflow"', "passed to the CLI as AIRFLOW_HOME (default $AIRFLOW_HOME)"),
    ("airflow", "dialect"): ('"auto"', "auto, 3, 2 or 1.10"),
    ("airflow", "env"): (
        '{ AIRFLOW__LOGGING__LOGGING_LEVEL = "WARNING" }',
        "extra environment for the CLI (the gateway's own AIRFLOW__* variables pass through too)",
    ),
    ("cli", "default_timeout"): ("120", "seconds before a command's process group is killed (504)"),
    ("cli", "timeouts"): ("{ test = 300, backfill = 900 }", "per-API timeouts in seconds"),
    ("cli", "max_output_bytes"): ("1048576", "cap per output stream; the rest is dropped and flagged"),
    ("cli", "max_concurrent"): ("3", "CLI calls running at once per worker process (default 3)"),
    ("cli", "max_waiting"): (
        "2",
        "further calls that may wait for a slot; beyond them 503 at once (default 2)",
    ),
    ("cli", "queue_timeout"): ("5", "seconds a waiting call waits for a slot before its 503 (default 5)"),
    ("cli", "runner"): (
        '"warm"',
        "warm: fork each call from a warm Airflow process; cold: a new process per call (default warm)",
    ),
    ("cli", "pass_principal_as_user"): (
        "true",
        "Airflow records the gateway principal as the CLI user in its log table (default true)",
    ),
    ("cli", "warm_max_calls"): ("2000", "a warm process is replaced after this many calls (default 2000)"),
    ("cli", "warm_max_age"): ("3600", "... or after this many seconds (default 3600)"),
    ("cli", "warm_max_rss_bytes"): (
        "1073741824",
        "... or once its resident memory passes this (default 1 GiB)",
    ),
    ("cli", "files_dir"): (
        '"/var/lib/airflow-gateway/files"',
        "variables import/export files (default <state_dir>/files)",
    ),
    ("rest_api_plugin", "log_loading"): ("false", "accepted for compatibility; no effect"),
    ("rest_api_plugin", "compatibility"): (
        '"off"',
        "1.0.9: answer as the original plugin v1.0.9 did (see docs/compatibility.md); default off",
    ),
    ("rest_api_plugin", "filter_loading_messages_in_cli_response"): (
        "true",
        "drop Airflow's loading messages from CLI output",
    ),
    ("rest_api_plugin", "rest_api_plugin_http_token_header_name"): (
        '"rest_api_plugin_http_token"',
        "header carrying the original token",
    ),
    ("rest_api_plugin", "rest_api_plugin_expected_http_token"): (
        '"change-me-to-a-long-random-token"',
        "the original token (unset: open); prefer AIRFLOW_GATEWAY__REST_API_PLUGIN__... from a secret",
    ),
    ("rest_api_plugin", "airflow_cfg"): (
        '"/opt/airflow/airflow.cfg"',
        "read its [rest_api_plugin] section (migration; default $AIRFLOW_HOME/airflow.cfg if present)",
    ),
    ("proxy", "upstream"): ('"http://127.0.0.1:8080"', "Airflow's api-server (3) or webserver (2)"),
    ("proxy", "connect_timeout"): ("5", "seconds to connect upstream"),
    ("proxy", "read_timeout"): ("60", "seconds to wait for upstream data"),
    ("proxy", "host_header"): ('"client"', "Host sent upstream: client, upstream or a fixed host[:port]"),
    ("proxy", "pool_size"): ("16", "kept-alive upstream connections per worker"),
    ("proxy", "readiness_path"): ('"/"', "what /readyz asks Airflow for"),
    ("limits", "max_body_bytes"): ("16777216", "largest request body"),
    ("limits", "max_form_memory_bytes"): ("1048576", "largest form held in memory"),
    ("audit", "file"): (
        '"/var/log/airflow-gateway/audit.jsonl"',
        "append audit events here instead of stdout",
    ),
    ("audit", "sensitive_names"): ('["pin", "otp"]', "more argument names whose values are redacted"),
    ("metrics", "enabled"): ("true", "serve /metrics"),
    ("metrics", "token"): ('"change-me-scrape-token"', "bearer token a scraper must send (unset: none)"),
    ("metrics", "allow_from"): ('["127.0.0.1/32", "10.0.0.0/8"]', "addresses that may scrape (empty: all)"),
    ("auth", "header_name"): ('"X-Gateway-Authorization"', "header carrying a gateway token or JWT"),
    ("auth", "tokens"): (
        '[{ name = "ci", sha256 = "sha256:' + "0" * 64 + '", groups = ["deployers"] }]',
        "named tokens by their hash (airflow-gateway hash-token --generate); or [[auth.tokens]] tables",
    ),
    ("auth", "allow_anonymous"): ("false", "let callers without credentials through (needs policy.dir)"),
    ("jwt", "algorithms"): ('["RS256"]', "accepted algorithms (HS* cannot mix with public-key ones)"),
    ("jwt", "key_file"): (
        '"/etc/airflow-gateway/jwt-public.pem"',
        "key source 1: a PEM public key or secret file",
    ),
    ("jwt", "key_env"): ('"GATEWAY_JWT_SECRET"', "key source 2: an environment variable holding the key"),
    ("jwt", "jwks_url"): ('"https://idp.example.com/.well-known/jwks.json"', "key source 3: a JWKS URL"),
    ("jwt", "jwks_timeout"): ("3", "seconds for a JWKS fetch (at most 30)"),
    ("jwt", "jwks_lifespan"): ("300", "seconds a fetched JWKS is kept"),
    ("jwt", "jwks_min_refresh_interval"): ("30", "least seconds between refetches for unknown key ids"),
    ("jwt", "issuer"): ('"https://idp.example.com/"', "required iss claim"),
    ("jwt", "audience"): ('["airflow-gateway"]', "accepted aud values"),
    ("jwt", "leeway"): ("10", "clock skew tolerance in seconds (at most 300)"),
    ("jwt", "required_claims"): ('["exp", "sub"]', "claims that must be present"),
    ("jwt", "subject_claim"): ('"sub"', "claim naming the principal"),
    ("jwt", "groups_claim"): ('"realm_access.roles"', "claim (dotted path) listing the principal's groups"),
    ("policy", "dir"): ('"/etc/airflow-gateway/policies"', "directory of policy TOML files"),
    ("policy", "shadow"): ("false", "log denials without enforcing them"),
    ("deploy", "dags_folder"): ('"/opt/airflow/dags"', "where uploads go (default: asked from Airflow)"),
    ("deploy", "max_upload_bytes"): ("1048576", "largest upload"),
    ("deploy", "allow_zip"): ("true", "accept zipped DAG bundles"),
    ("deploy", "allow_subfolder"): ("true", "accept the subfolder argument"),
    ("deploy", "max_zip_entries"): ("200", "most files in a zip"),
    ("deploy", "max_unzipped_bytes"): ("16777216", "largest unzipped size"),
    ("deploy", "dag_list_ttl"): ("10", "seconds the page's DAG list is cached"),
    ("jobs", "database_url"): (
        '"postgresql://gateway@db.example:5432/gateway_jobs"',
        "shared job store for several instances (default: SQLite in the state directory)",
    ),
    ("jobs", "max_running"): ("2", "jobs running at once per worker process (default 2)"),
    ("jobs", "max_queued"): ("20", "jobs waiting for a free job thread; beyond them 503 (default 20)"),
    ("jobs", "timeout"): ("3600", "seconds before a job's process tree is killed (default 3600)"),
    ("jobs", "max_output_bytes"): (
        "8388608",
        "output kept per job; the rest is dropped and flagged (default 8 MiB)",
    ),
    ("jobs", "retention"): ("604800", "seconds a finished job is kept (default 7 days)"),
    ("jobs", "stream_max_seconds"): ("30", "longest single SSE response; clients reconnect (default 30)"),
}

# Set in the sample (everything else is commented out and takes its default).
ACTIVE = {("proxy", "upstream")}


def render() -> str:
    """The sample file: every section and setting, active ones uncommented."""
    lines = [
        "# airflow-gateway configuration (generated by `airflow-gateway sample-config`).",
        "# Every setting is listed; commented ones take their default. Environment variables",
        "# AIRFLOW_GATEWAY__SECTION__KEY override this file (put secrets there, not here).",
    ]
    section = ""
    for sec, key in setting_names():
        example, meaning = SETTINGS[(sec, key)]
        if sec != section:
            section = sec
            lines += ["", f"# {SECTIONS[sec]}", f"[{sec}]"]
        lines.append(f"# {meaning}")
        lines.append(f"{'' if (sec, key) in ACTIVE else '# '}{key} = {example}")
    return "\n".join(lines) + "\n"
