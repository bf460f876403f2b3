"""nginx (Debian's package) as a round-robin balancer on loopback, with a private config.

The config is the one docs/deployment.md describes for gateways behind nginx, notably
``underscores_in_headers on``: without it nginx drops the original plugin's
``rest_api_plugin_http_token`` header.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import free_port, stop_group, wait_http

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
  access_log {tmp}/access.log;
  client_body_temp_path {tmp}/client_body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  # Stream both ways: uploads and long CLI answers never touch the temp paths.
  client_max_body_size 16m;
  client_body_buffer_size 16m;
  proxy_request_buffering off;
  proxy_buffering off;
  underscores_in_headers on;
  upstream gateways {{
{servers}
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://gateways;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_read_timeout 900s;
    }}
  }}
}}
"""


@dataclass
class Nginx:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        stop_group(self.proc)


def start_nginx(tmp: Path, backends: list[str]) -> Nginx:
    """nginx on a free loopback port, balancing round-robin over ``backends`` (``host:port``)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    servers = "\n".join(f"    server {backend};" for backend in backends)
    conf = tmp / "nginx.conf"
    conf.write_text(CONFIG.format(tmp=tmp, servers=servers, port=port))
    log = tmp / "nginx.out"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [nginx, "-p", str(tmp), "-e", str(tmp / "error.log"), "-c", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/healthz", proc, tmp / "error.log")
    return Nginx(url=url, proc=proc, log=tmp / "error.log")
