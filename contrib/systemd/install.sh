#!/bin/sh
# Install the hotline daemon as a systemd service: the steps of README.md, "Install as a
# service". Run as root from a clone, after building the wheel:
#
#   contrib/systemd/install.sh dist/hotline12329-*.whl
#
# Safe to run again (an upgrade): the user, folders, config and secrets are kept.
# HOTLINE_ROOT puts /opt, /etc and /var/lib under a prefix and HOTLINE_USER names the
# service user (the test tests/e2e/test_service_install.py uses both); with a prefix the
# unit is written under it and systemctl is not run.
set -eu
umask 022  # the program readable by the service user; config and secrets are set below

wheel=$1
root=${HOTLINE_ROOT:-}
user=${HOTLINE_USER:-hotline}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$(dirname "$here")")

# 1. The service user: no login, no home of its own but the state folder.
id -u "$user" >/dev/null 2>&1 ||
    useradd --system --user-group --home-dir /var/lib/hotline --shell /usr/sbin/nologin "$user"

# 2. The program: a virtual environment in /opt/hotline with the wheel, on the system's
#    Python (3.11 or later; one in root's home could not be run by the service user).
/usr/bin/python3 -m venv "$root/opt/hotline"
"$root/opt/hotline/bin/pip" install --quiet --upgrade "$wheel"

# 3. The layout: configuration in /etc/hotline (root-owned, readable by the group), state
#    in /var/lib/hotline (the service user's), logs to journald (log_file = -).
install -d -m 0750 -o root -g "$user" "$root/etc/hotline"
install -d -m 0750 -o "$user" -g "$user" "$root/var/lib/hotline"
if [ ! -e "$root/etc/hotline/hotline.ini" ]; then
    sed -e "s|^state_dir = var|state_dir = $root/var/lib/hotline|" \
        -e "s|^url = sqlite:///var/hotline.db|url = sqlite:///$root/var/lib/hotline/hotline.db|" \
        -e "s|^core_db = var/|core_db = $root/var/lib/hotline/|" \
        -e "s|^library_dir = var/prompts|library_dir = $root/var/lib/hotline/prompts|" \
        -e "s|^recording_dir = var/prompts|recording_dir = $root/var/lib/hotline/prompts|" \
        "$repo/hotline.sample.ini" > "$root/etc/hotline/hotline.ini"
    chown "root:$user" "$root/etc/hotline/hotline.ini"
    chmod 0640 "$root/etc/hotline/hotline.ini"
fi
# Secrets (HOTLINE_AMI_SECRET=..., one per line), read by systemd only.
[ -e "$root/etc/hotline/hotline.env" ] || install -m 0600 -o root -g root /dev/null \
    "$root/etc/hotline/hotline.env"

# 4. Folders, migrations and default prompts, as the service user.
runuser -u "$user" -- "$root/opt/hotline/bin/hotline" init --config "$root/etc/hotline/hotline.ini"

# 5. The unit.
mkdir -p "$root/etc/systemd/system"
sed -e "s|/opt/hotline|$root/opt/hotline|g" -e "s|/etc/hotline|$root/etc/hotline|g" \
    -e "s|/var/lib/hotline|$root/var/lib/hotline|g" \
    -e "s|^User=hotline|User=$user|" -e "s|^Group=hotline|Group=$user|" \
    "$here/hotline.service" > "$root/etc/systemd/system/hotline.service"
if [ -z "$root" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    systemctl enable hotline
    echo "edit /etc/hotline/hotline.ini and /etc/hotline/hotline.env, then: systemctl start hotline"
fi
