import os
C = []
YD = os.path.join(WORK, "yaml")
os.makedirs(YD, exist_ok=True)
n = [0]
PY = "listen-client-urls: http://127.0.0.1:23791\nadvertise-client-urls: http://127.0.0.1:23791\nlisten-peer-urls: http://127.0.0.1:23801\ninitial-advertise-peer-urls: http://127.0.0.1:23801\ninitial-cluster: default=http://127.0.0.1:23801\n"
def y(text, args=None, env=None, note=None):
    n[0] += 1
    p = f"{YD}/c{n[0]}.yaml"
    open(p, "w").write(text)
    C.append((["--config-file", p] + (args or []), env or {}, note))
y("name: [n1\n")
for t in ["name: 123\n", "name: true\n", "heartbeat-interval: abc\n", 'heartbeat-interval: "100"\n', "heartbeat-interval: -1\n",
          "heartbeat-interval: 100.5\n", "auto-compaction-retention: 1\n", 'enable-v2: "true"\n', "grpc-keepalive-min-time: 5s\n",
          "log-outputs: stderr\n", "cipher-suites: abc\n", "listen-client-urls: [a]\n", "client-transport-security: foo\n", "- a\n",
          "listen-client-urls: foo\n", "listen-metrics-urls: foo\n", "initial-cluster-state: foo\n", "proxy: foo\n",
          "discovery-fallback: foo\n", "max-concurrent-streams: 99999999999\n", "log-outputs: [1]\n", "peer-transport-security: {cert-file: 1}\n",
          "heartbeat-interval: 1000\n", "Heartbeat-Interval: 1000\n", "heartbeat-interval: 1e2\nelection-timeout: 100\n",
          "heartbeat-interval: 100.0\nelection-timeout: 100\n", "enable-v2: yes\nheartbeat-interval: 1000\n",
          "grpc-keepalive-min-time: 5000000000\nheartbeat-interval: 1000\n", "log-outputs: [stderr]\nheartbeat-interval: 1000\n",
          "name: ~\nheartbeat-interval: 1000\n", "initial-cluster-state: \"\"\nheartbeat-interval: 1000\n",
          "bogus: 1\nheartbeat-interval: 1000\n", "1: 2\nheartbeat-interval: 1000\n", "listen-client-urls: \"\"\nheartbeat-interval: 1000\n",
          "log-output: [stderr]\nlog-outputs: [stderr]\n", "logger: zap\nlog-outputs: [default, stderr]\n",
          "experimental-enable-lease-checkpoint-persist: true\n", "auto-compaction-mode: foo\n", "discovery: http://127.0.0.1:1/x\n" + PY.replace("initial-cluster: default=http://127.0.0.1:23801\n", "initial-cluster: x=http://127.0.0.1:23801\n"),
          ]:
    y(t)
y("heartbeat-interval: 1000\n", args=["--name", "zz"], env={"ETCD_NAME": "x", "ETCD_FOO": "1"})
y(PY + "name: n1\ninitial-cluster: n1=http://127.0.0.1:23801\nbogus-key: 12\n")
y(PY + "name: n1\n")
y(PY + "auto-compaction-retention: \"5\"\n")
y(PY + "auto-compaction-retention: \"1h\"\n")
y(PY + "initial-cluster: default=http://127.0.0.1:23801,default=http://127.0.0.1:23802\n")
y(PY + "listen-client-urls: https://127.0.0.1:23791\n")
y(PY + "client-transport-security:\n  cert-file: /x\n", note="NOT_IMPLEMENTED")
C.append((["--config-file", WORK + "/nonexistent.yaml"], {}, None))
C.append((["--config-file", YD], {}, None))
C.append(([], {"ETCD_CONFIG_FILE": YD + "/c25.yaml"}, None))
open(YD + "/adv.yaml","w").write("advertise-client-urls: foo\n")
C.append((["--config-file", YD + "/adv.yaml"], {}, "chorus names the right key"))
main(C)
