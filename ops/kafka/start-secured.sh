#!/usr/bin/env bash
# Start Kafka (KRaft, one combined broker+controller) secured exactly as onewindow's local
# broker (onewindow/kafka_local.py): SASL/SCRAM-SHA-512 on the client listener, SASL/PLAIN
# on the controller listener, Kafka's StandardAuthorizer with no access where no ACL
# matches, and one super user, the broker's own principal `admin`, whose SCRAM credential
# is written into the metadata log when the data directory is first formatted.
#
# docker-compose.yml runs it in the official apache/kafka image (entrypoint). Inputs:
#   KAFKA_ADMIN_PASSWORD_FILE  the broker's password (a compose secret; never in the env)
#   KAFKA_ADVERTISED_HOST      the name clients use (default: kafka)
#   KAFKA_DATA_DIR             log.dirs (default: /var/lib/kafka/data)
#   KAFKA_HOME                 the Kafka installation (default: /opt/kafka)
#   KAFKA_CLIENT_PORT / KAFKA_CONTROLLER_PORT (default 9092 / 9093)
#   KAFKA_CLUSTER_ID           fixed cluster id (default: a new one at first format)
set -euo pipefail
home=${KAFKA_HOME:-/opt/kafka}
data=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
host=${KAFKA_ADVERTISED_HOST:-kafka}
port=${KAFKA_CLIENT_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-9093}
conf=${KAFKA_CONFIG_DIR:-/tmp/onewindow-kafka}
pw=$(tr -d '\n' < "${KAFKA_ADMIN_PASSWORD_FILE:?set KAFKA_ADMIN_PASSWORD_FILE}")
case "$pw" in *[!A-Za-z0-9_-]*|"")
  echo "start-secured: the admin password must be non-empty [A-Za-z0-9_-] (SCRAM's parser splits on , and =)" >&2
  exit 2;;
esac
umask 077
mkdir -p "$conf"
cat > "$conf/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=CLIENT://:${port},CONTROLLER://127.0.0.1:${cport}
advertised.listeners=CLIENT://${host}:${port}
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=127.0.0.1:${cport}
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${pw}";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${pw}" user_admin="${pw}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
auto.create.topics.enable=false
log.dirs=${data}
log.retention.hours=-1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
# a client configuration for the healthcheck and for operators' kafka-*.sh tools
cat > "$conf/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${pw}";
PROPS
if [ ! -f "$data/meta.properties" ]; then
  cid=${KAFKA_CLUSTER_ID:-$("$home/bin/kafka-storage.sh" random-uuid)}
  "$home/bin/kafka-storage.sh" format --standalone -t "$cid" -c "$conf/server.properties" \
    --add-scram "SCRAM-SHA-512=[name=admin,password=${pw}]"
fi
exec "$home/bin/kafka-server-start.sh" "$conf/server.properties"
