#!/usr/bin/env bash
# Local Apache Kafka 3.9 brokers without Docker: jars from Maven Central, single-node KRaft (broker + controller
# in one JVM), each instance with its own data directory and ports. Idempotent: installing twice, starting a
# running instance or stopping a stopped one is a quick no-op.
#
#   compose/local/kafka.sh install                  fetch kafka_2.13:$KAFKA_VERSION + runtime deps (Maven) once
#   compose/local/kafka.sh start NAME PORT [CPORT]  PLAINTEXT on 127.0.0.1:PORT, controller on CPORT (PORT+100)
#   compose/local/kafka.sh stop NAME                SIGTERM (controlled shutdown), wait up to 60 s, then SIGKILL
#   compose/local/kafka.sh kill NAME                SIGKILL (tests: a broker crash)
#   compose/local/kafka.sh stop-all | destroy NAME | status
#
# Jars: .tools/kafka/libs (org.apache.kafka:kafka_2.13 with its runtime dependencies, plus slf4j-reload4j and
# reload4j: core declares its log binding compile-only, so without them the broker logs nothing). Needs Java 17+
# and Maven (apt-get install openjdk-17-jre-headless maven when missing, as root).
# State lives in $TIDEMARK_RUN_DIR (default: .run/ of this checkout): .run/kafka/NAME/{data,server.properties,
# log4j.properties,logs/server.log,stdout.log,kafka.pid}.
#
# The broker is for tests and the demo: one node, replication factor 1. It flushes every append to disk
# (log.flush.interval.messages=1), so that a single node keeps acknowledged messages even through a power loss;
# a production cluster gets that from replication instead (README: ship/kafka/README.md).
set -euo pipefail
# shellcheck source=compose/local/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
home="$root/.tools/kafka"
libs="$home/libs"
stamp="$libs/.complete-$KAFKA_VERSION"
JVM_OPTS="${TIDEMARK_KAFKA_JVM_OPTS:--Xmx512m -Xms128m -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"

install() {
  [ -f "$stamp" ] && return
  command -v java >/dev/null || apt_install "java not found" openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install "mvn not found" maven
  echo "kafka.sh: fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies (Maven)" >&2
  local work="$home/.fetch"
  rm -rf "$work" && mkdir -p "$work"
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>tidemark.local</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>
    <dependency><groupId>ch.qos.reload4j</groupId><artifactId>reload4j</artifactId><version>1.2.25</version></dependency>
  </dependencies>
</project>
POM
  mvn -B -q -f "$work/pom.xml" org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$work/libs" >"$work/mvn.log" 2>&1 ||
    { tail -30 "$work/mvn.log" >&2; die "Maven could not fetch the Kafka jars (log: $work/mvn.log)"; }
  ls "$work/libs"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "Maven gave no kafka_2.13-$KAFKA_VERSION.jar"
  ls "$work/libs"/slf4j-reload4j-*.jar "$work/libs"/reload4j-*.jar >/dev/null 2>&1 || die "no log binding jars"
  rm -rf "$libs"
  mv "$work/libs" "$libs"
  rm -rf "$work"
  touch "$stamp"
  echo "kafka.sh: $(find "$libs" -name '*.jar' | wc -l) jars in $libs" >&2
}

pid_file() { echo "$run/kafka/$1/kafka.pid"; }
java_run() { java $JVM_OPTS -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d/logs" -cp "$libs/*" "$@"; }

started() { # NAME PID PORT MARK: the broker listens and logged "started" after line MARK; dies if it exited
  kill -0 "$2" 2>/dev/null || { tail -30 "$d/logs/server.log" "$d/stdout.log" >&2 || true; die "$1 exited while starting"; }
  port_open "$3" && tail -n +"$(($4 + 1))" "$d/logs/server.log" 2>/dev/null | grep -q 'Kafka Server started'
}

start() {
  local name="$1" port="$2" cport="${3:-$(($2 + 100))}"
  check_name "$name"
  check_port "$port"
  check_port "$cport"
  install
  d="$run/kafka/$name"
  mkdir -p "$d/data" "$d/logs"
  if pid=$(pidof_inst "$name"); then echo "kafka.sh: $name already running (pid $pid, port $port)"; return; fi
  port_open "$port" && die "port $port is taken by another process"
  port_open "$cport" && die "controller port $cport is taken by another process"
  cat >"$d/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$d/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
log.flush.interval.messages=1
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
PROPS
  cat >"$d/log4j.properties" <<LOG
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$d/logs/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
LOG
  if [ ! -f "$d/data/meta.properties" ]; then
    local id
    id="$(java_run kafka.tools.StorageTool random-uuid 2>>"$d/stdout.log" | tail -1)"
    [[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "StorageTool random-uuid gave '$id' (see $d/stdout.log)"
    java_run kafka.tools.StorageTool format -t "$id" -c "$d/server.properties" >>"$d/stdout.log" 2>&1 ||
      { tail -20 "$d/stdout.log" >&2; die "StorageTool format failed for $name"; }
  fi
  local mark
  mark=$(wc -l <"$d/logs/server.log" 2>/dev/null || echo 0)
  # setsid: the broker outlives the shell (and a test runner) that started it; stop/kill find it by its pidfile.
  setsid nohup java $JVM_OPTS -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d/logs" \
    -cp "$libs/*" kafka.Kafka "$d/server.properties" >>"$d/stdout.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$d/kafka.pid"
  local timeout="${TIDEMARK_KAFKA_START_TIMEOUT:-90}"
  if wait_until "$timeout" started "$name" "$pid" "$port" "$mark"; then
    echo "kafka.sh: $name up on 127.0.0.1:$port (controller $cport, pid $pid)"
    return
  fi
  tail -30 "$d/logs/server.log" >&2 || true
  die "$name did not start within $timeout s (log: $d/logs/server.log)"
}

stop() { stop_instance "$1" 60; } # controlled shutdown on SIGTERM

case "${1:-}" in
  install) install ;;
  start) [ $# -ge 3 ] || usage "start NAME PORT [CPORT]"; start "$2" "$3" "${4:-}" ;;
  stop) [ $# -ge 2 ] || usage "stop NAME"; stop "$2" ;;
  kill) [ $# -ge 2 ] || usage "kill NAME"; kill_instance "$2" ;;
  stop-all) for n in $(instances kafka); do stop "$n"; done ;;
  destroy) [ $# -ge 2 ] || usage "destroy NAME"; stop "$2"; rm -rf "${run:?}/kafka/$2" ;;
  status)
    for n in $(instances kafka); do
      p=$(sed -n 's#^listeners=PLAINTEXT://127.0.0.1:\([0-9]*\),.*#\1#p' "$run/kafka/$n/server.properties" 2>/dev/null)
      if pid=$(pidof_inst "$n"); then echo "$n running pid $pid port $p"; else echo "$n stopped"; fi
    done
    ;;
  *) usage "install | start NAME PORT [CPORT] | stop NAME | kill NAME | stop-all | destroy NAME | status" ;;
esac
