#!/bin/sh
# Starts Prometheus (docker-compose.yml, service prometheus) with infra/prometheus/prometheus.yml,
# after putting the gateway's token where the config expects it, and then runs its arguments
# ("$@": /bin/prometheus and its flags).
#
# HABLA_TOKEN    the gateway's token; written to $HABLA_RUN_DIR/token (mode 600), a tmpfs in
#                compose, so it is in no file of the repository and in no volume
# HABLA_HTTPS    0: the gateway serves plain HTTP, so its scrape does too (default 1: HTTPS)
# HABLA_PROMETHEUS_CONFIG  the config to start from (default /etc/habla/prometheus.yml)
# HABLA_RUN_DIR  where the token and the config Prometheus reads go (default /run/habla)
set -eu

config=${HABLA_PROMETHEUS_CONFIG:-/etc/habla/prometheus.yml}
run=${HABLA_RUN_DIR:-/run/habla}

if [ -z "${HABLA_TOKEN:-}" ]; then
    echo "entrypoint: HABLA_TOKEN is empty: the gateway's metrics will be refused (401)" >&2
fi
mkdir -p "$run"
umask 077
printf '%s' "${HABLA_TOKEN:-}" > "$run/token"
https=$(printf '%s' "${HABLA_HTTPS:-1}" | tr '[:upper:]' '[:lower:]')
case "$https" in
    0 | false | no | off) sed 's/^\( *scheme:\) https$/\1 http/' "$config" > "$run/prometheus.yml" ;;
    *) cp "$config" "$run/prometheus.yml" ;;
esac

exec "$@"
