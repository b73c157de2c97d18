#!/usr/bin/env bash
# The Debian packages onewindow needs, installed when missing (as root), so that a
# newcomer's `make run` / `make test` and CI's `.ci/run` need nothing done by hand.
#   ops/install-system-deps.sh run    what `make run` needs: Java, Maven
#   ops/install-system-deps.sh test   plus what the tests need: PostgreSQL, kcat,
#                                     Prometheus (promtool), Chromium, CJK fonts
set -euo pipefail
what="${1:-test}"
need=()
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "$what" = test ]; then
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)  # tests: read model
  command -v kcat >/dev/null || need+=(kcat)              # tests: raw bytes from the broker
  command -v promtool >/dev/null || need+=(prometheus)    # tests: alert rules, a real scrape
  command -v chromium >/dev/null || need+=(chromium)      # tests/e2e: the counter screen
  # tests/e2e and the screenshots: Chinese text in the pages (else Chromium draws boxes);
  # the package itself (a directory of Noto fonts can come from others without CJK), and
  # fc-list, with which the browser test asks which fonts cover Chinese
  dpkg-query -W -f='${db:Status-Status}' fonts-noto-cjk 2>/dev/null | grep -qx installed ||
    need+=(fonts-noto-cjk)
  command -v fc-list >/dev/null || need+=(fontconfig)
  # tests: Keycloak (OpenID Connect) needs Java 21+ beside the default 17 (Debian 12 has
  # none; a newer Debian does); the Keycloak fixture names what is missing
  if [ -z "${ONEWINDOW_KEYCLOAK_JAVA_HOME:-}" ] &&
     ! grep -qsE '^JAVA_VERSION="(2[1-9]|[3-9][0-9])' /usr/lib/jvm/*/release; then
    jdk=""
    if [ "$(id -u)" -eq 0 ]; then
      apt-get update -qq
      for p in openjdk-25-jre-headless openjdk-21-jre-headless; do
        if apt-cache policy "$p" | grep -q 'Candidate: [0-9]'; then jdk=$p; break; fi
      done
    fi
    if [ -n "$jdk" ]; then need+=("$jdk"); else
      echo "onewindow: the Keycloak tests need Java 21+ (none under /usr/lib/jvm):" \
           "install one or set ONEWINDOW_KEYCLOAK_JAVA_HOME" >&2
    fi
  fi
fi
((${#need[@]})) || exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "onewindow needs these Debian packages: sudo apt-get install ${need[*]}" >&2
  exit 1
fi
echo "installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
