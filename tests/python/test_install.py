"""`make install` into a package root (DESTDIR): the files, their modes
and owners, the postling system user, a systemd unit that passes
`systemd-analyze verify`, and an existing config left alone."""

import os
import re
import shutil
import stat
import subprocess

import pytest

from conftest import BINARY, ROOT


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root")
def test_make_install_into_a_package_root(tmp_path):
    dest = tmp_path / "root"
    (dest / "etc").mkdir(parents=True)
    for f in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy(f"/etc/{f}", dest / "etc" / f)

    def install():
        out = subprocess.run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr",
                              f"BIN={BINARY}"], cwd=ROOT, capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr

    install()
    account = [l for l in (dest / "etc/passwd").read_text().splitlines()
               if l.startswith("postling:")]
    assert len(account) == 1
    _, _, uid, gid, _, home, shell = account[0].split(":")
    assert (home, shell) == ("/var/lib/postling", "/usr/sbin/nologin")
    binary = dest / "usr/bin/postling"
    assert os.access(binary, os.X_OK)
    users = (dest / "etc/postling/users").stat()
    assert (users.st_uid, users.st_gid) == (int(uid), int(gid))
    assert stat.S_IMODE(users.st_mode) == 0o600
    data = (dest / "var/lib/postling").stat()
    assert (data.st_uid, stat.S_IMODE(data.st_mode)) == (int(uid), 0o711)
    assert (dest / "usr/share/postling/fail2ban/filter.d/postling.conf").exists()
    unit = (dest / "etc/systemd/system/postling.service").read_text()
    assert "ExecStart=/usr/bin/postling serve -c /etc/postling/postling.conf" in unit
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/postling", "PrivateTmp=yes",
                 "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
        assert line in unit
    # The unit as installed, its binary found where DESTDIR put it.
    check = tmp_path / "postling.service"
    check.write_text(unit.replace("/usr/bin/postling", str(binary)))
    out = subprocess.run(["systemd-analyze", "verify", str(check)],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr.strip() == "", out.stderr
    # The sandbox holds: systemd's own exposure score (README: 3.6).
    out = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(check)],
                         capture_output=True, text=True)
    score = re.search(r"Overall exposure level for \S+: ([\d.]+)", out.stdout + out.stderr)
    assert score and float(score.group(1)) <= 4.0, out.stdout + out.stderr
    # The example config is valid as installed.
    out = subprocess.run([str(binary), "check", "-c", str(dest / "etc/postling/postling.conf")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # A second install keeps the admin's edits and adds no second user.
    conf = dest / "etc/postling/postling.conf"
    conf.write_text(conf.read_text() + "# edited\n")
    install()
    assert conf.read_text().endswith("# edited\n")
    assert sum(l.startswith("postling:") for l in (dest / "etc/passwd").read_text().splitlines()) == 1
