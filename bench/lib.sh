# Shared by bench/scale.sh and bench/serve.sh: a free loopback port and a private nginx.
# Source it: `. "$(dirname "$0")/lib.sh"`.

# A free TCP port on 127.0.0.1 (for nginx, which cannot report the port it bound).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# nginx_start DIR ROOT PORT WORKERS [SERVER_LINES]
# A private nginx in the foreground under DIR (config, pid, logs, temp paths), serving ROOT on
# 127.0.0.1:PORT with WORKERS worker processes, no access log, sendfile and long keep-alive,
# plus SERVER_LINES inside its server block. Sets NGINX_PID and NGINX_URL, and waits until it
# answers; the caller stops it (kill "$NGINX_PID").
nginx_start() {
  local dir=$1 root=$2 port=$3 workers=$4 extra=${5:-}
  rm -rf "$dir"; mkdir -p "$dir/tmp"
  local user_line=""
  [ "$(id -u)" = 0 ] && user_line="user root root;"
  cat >"$dir/nginx.conf" <<CONF
$user_line
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  keepalive_timeout 65;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  server {
    listen 127.0.0.1:$port;
    root $root;
    $extra
  }
}
CONF
  nginx -t -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" >/dev/null 2>&1 \
    || { nginx -t -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log"; return 1; }
  nginx -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" &
  NGINX_PID=$!
  NGINX_URL=http://127.0.0.1:$port
  local i
  for i in $(seq 100); do
    curl -s -o /dev/null "$NGINX_URL/" && return 0
    sleep 0.1
  done
  echo "error: nginx did not start on $NGINX_URL" >&2
  cat "$dir/error.log" >&2
  return 1
}
