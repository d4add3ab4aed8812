"""PromptStore and AdminCalls on the real reactor: processing in a thread, rows via
Database.run, the recording fetched by a local command standing in for scp."""
import dataclasses
import shutil
import tempfile
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from prompts import library, staff
from prompts.audio import Silent
from prompts.config import PromptsConfig
from ivr.routing import AdminCalls, CallsByRole
from prompts.service import PromptStore
from storage.db import Database

from tests.support.audio_files import make_audio
from tests.support.prompt_fakes import FakeSession


@dataclasses.dataclass
class _Center:
    languages: tuple


@dataclasses.dataclass
class _Config:
    prompts: PromptsConfig
    centers: dict


class PromptStoreTest(TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="hotline-prompts-"))
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.audio = make_audio(self.tmp / "audio")
        self.db = Database(f"sqlite:///{self.tmp / 'h.db'}", reactor, threads=1)
        self.db.create_all()
        self.db.startService()
        self.addCleanup(self.db.stopService)
        self.asterisk_side = self.tmp / "asterisk-recordings"
        self.asterisk_side.mkdir()
        self.config = PromptsConfig(
            library_dir=self.tmp / "lib", formats=("wav", "ulaw"), wideband=False,
            loudness_dbfs=-20.0, max_seconds=60.0, recording_dir=self.asterisk_side,
            fetch_command="cp {remote} {local}")
        self.store = PromptStore(self.config, self.db, reactor)

    async def _install_fetched(self):
        remote = await self.store.new_recording()
        shutil.copyfile(self.audio / "padded.wav", f"{remote}.wav")
        local = await self.store.fetch(remote)
        self.assertNotEqual(local, f"{remote}.wav")  # copied by fetch_command
        change = await self.store.install(local, "ivr/welcome", "sz", "zh", "phone", "8001")
        await self.store.discard(remote)
        self.assertFalse(Path(local).exists())
        return change

    def test_fetch_install_discard(self):
        """A recording on 'Asterisk's host' is fetched, processed off the reactor, installed."""
        d = Deferred.fromCoroutine(self._install_fetched())

        def check(change):
            self.assertEqual((change.old_version, change.new_version), (None, 1))
            self.assertTrue(self.store.path("sz", "zh", "ivr/welcome").startswith(
                str(self.tmp / "lib" / "current" / "sz")))
        return d.addCallback(check)

    def test_silence_is_rejected_without_install(self):
        """Unusable audio raises AudioRejected and leaves no version behind."""
        d = Deferred.fromCoroutine(self.store.install(str(self.audio / "silence.wav"),
                                                      "ivr/welcome", "sz", "zh", "phone", "8001"))
        d = self.assertFailure(d, Silent)
        d.addCallback(lambda _: self.db.run(library.installed))
        return d.addCallback(self.assertEqual, {})

    def test_admin_calls_routes_and_installs(self):
        """Calls whose second AGI argument is 'admin' go to AdminCalls (for their center),
        the others to the IVR flow."""
        self.db.run_sync(staff.add, "8001", "Li", "2468", 0.0)
        config = _Config(dataclasses.replace(self.config, fetch_command=""),
                         {"sz": _Center(("zh",))})
        handler = AdminCalls(config, reactor, self.db)
        session = FakeSession(["8001", "2468", handler.catalog.number_of("ivr/welcome"), "1",
                               "*"], [self.audio / "padded.wav"])
        self.assertTrue(AdminCalls.wants(session))
        caller = FakeSession([])
        caller.args = ["hotline-1", "ivr", "sz"]
        self.assertFalse(AdminCalls.wants(caller))
        async def ivr(session):
            return "ivr"

        route = CallsByRole(ivr, handler)
        self.assertEqual(self.successResultOf(Deferred.fromCoroutine(route(caller))), "ivr")
        d = Deferred.fromCoroutine(route(session))
        d.addCallback(self.assertEqual, "admin: 1 installed")
        d.addCallback(lambda _: self.db.run(library.audit))
        return d.addCallback(lambda rows: self.assertEqual(
            [(r.who, r.center, r.lang, r.action) for r in rows],
            [("8001", "sz", "zh", "phone")]))
