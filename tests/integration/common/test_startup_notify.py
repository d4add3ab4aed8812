"""The systemd notification over a real datagram socket."""
import socket


from common.startup import notify_systemd


def test_notify_systemd_writes_one_datagram(tmp_path, monkeypatch):
    """With NOTIFY_SOCKET set (Type=notify) the state goes there as one datagram; without
    it nothing happens."""
    path = tmp_path / "notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.settimeout(2)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        notify_systemd("READY=1")
        assert listener.recv(64) == b"READY=1"
        monkeypatch.delenv("NOTIFY_SOCKET")
        notify_systemd("READY=1")
    finally:
        listener.close()
