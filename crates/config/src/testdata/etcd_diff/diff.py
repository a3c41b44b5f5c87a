#!/usr/bin/env python3
"""Differential check of configuration handling: real etcd vs chorus.

Runs each case (argv + environment) through the installed `etcd` (3.4.23)
and through chorus's `config_check` example, classifies the outcome
(RUN / HELP / VERSION / exit-2 flag error / "error verifying flags" message /
critical startup message) and prints any difference.

    cargo build -p chorus-server --example config_check
    python3 diff.py cases_flags.py
    python3 diff.py cases_file.py

Valid configurations make etcd start; it is killed after 3 s. All URLs used
are on 127.0.0.1 ports 23791/23801 (change P if they are taken).
"""
import os, re, subprocess, sys, tempfile, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
CHORUS = os.environ.get("CHORUS_CONFIG_CHECK", os.path.join(HERE, "../../../../../../target/debug/examples/config_check"))
WORK = tempfile.mkdtemp(prefix="chorus-etcd-diff-")
P = ["--listen-client-urls", "http://127.0.0.1:23791", "--advertise-client-urls", "http://127.0.0.1:23791",
     "--listen-peer-urls", "http://127.0.0.1:23801", "--initial-advertise-peer-urls", "http://127.0.0.1:23801",
     "--initial-cluster", "default=http://127.0.0.1:23801"]
PNOIC = P[:-2]

def run(binary, args, env, timeout):
    d = tempfile.mkdtemp(dir=WORK)
    e = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
    e.update(env)
    try:
        p = subprocess.run([binary] + args, cwd=d, env=e, capture_output=True, timeout=timeout, text=True, errors="replace")
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as ex:
        rc, out, err = 124, (ex.stdout or b"").decode(errors="replace") if isinstance(ex.stdout, bytes) else (ex.stdout or ""), ""
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return rc, out, err

def classify(rc, out, err, prog):
    if rc == 124:
        return "RUN"
    if rc == 0:
        if prog == "chorus" and out.startswith("Config {"):
            return "RUN"
        if "Version:" in out.splitlines()[0] if out else False:
            return "VERSION"
        if out.startswith("\nMember:"):
            return "HELP"
        return "EXIT0?" + out[:80]
    err = re.sub(r' \(config file "[^"]*"\)', '', err)
    err = re.sub(r"error converting YAML to JSON: .*?\.( See|$)", r"error converting YAML to JSON: <yaml error>.\1", err, flags=re.M)
    lines = [l for l in err.splitlines() if l.strip() and not l.startswith(("I | ", "W | ", "[WARNING]"))]
    if rc == 2:
        return "2:" + (lines[0] if lines else "?")
    for l in lines:
        m = re.search(r"error verifying flags, (.*)\. See '(etcd|chorus) --help'\.", l)
        if m:
            return "V:" + m.group(1)
    for l in lines:
        m = re.search(r" C \| (?:[a-z/]+: )?(.*)$", l) or re.search(r" I \| (unexpected error.*)$", l)
        if m:
            return "C:" + m.group(1)
    if prog == "chorus":
        return "C:" + (lines[0] if lines else "?")
    for l in lines:
        if re.search(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (.*)$", l):
            return "C:" + re.sub(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d ", "", l)
    return "C:" + (lines[0] if lines else "?")

def main(cases):
    bad = 0
    for args, env, note in cases:
        erc, eout, eerr = run("etcd", args, env, 3)
        crc, cout, cerr = run(CHORUS, args, env, 10)
        ec, cc = classify(erc, eout, eerr, "etcd"), classify(crc, cout, cerr, "chorus")
        ok = ec == cc
        if not ok:
            bad += 1
        tag = "OK  " if ok else ("EXPD" if note else "DIFF")
        print(f"{tag} {' '.join(repr(a) if (' ' in a or a == '') else a for a in args)} {env if env else ''}")
        if not ok:
            print(f"     etcd  [{erc}]: {ec}")
            print(f"     chorus[{crc}]: {cc}" + (f"   <- {note}" if note else ""))
    print(f"\n{bad} differences")
    shutil.rmtree(WORK, ignore_errors=True)

if __name__ == "__main__":
    exec(open(sys.argv[1]).read())
