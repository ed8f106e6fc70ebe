"""The device's update agent: verify, install beside, switch, health-check, commit or roll back.

One check (`UpdateAgent.check(wanted)`), in order, each step recorded first in a small
journal (`/var/lib/porchlight/update/state.json`, written atomically) so a power cut at any
point is finished or undone by the next run (`recover()`, called first by every check):

    refresh TUF metadata  → nothing changes on disk but the trusted metadata
    download (resumable)  → downloads/<hash>.<name>.part, verified, renamed
    phase=installing      → releases/<v>/ filled, then `.complete`      (cut: folder removed)
    phase=switching       → previous -> old, then current -> new (rename) (cut: old or new)
    phase=trial           → kiosk restarted; health checked until commit or rollback
    commit                → phase=idle, old releases beyond `previous` removed
    rollback              → phase=rolling_back, current -> old, kiosk restarted, new removed

`current` only ever names a complete release, so the kiosk always starts something that was
fully installed; a new release that never reports healthy (crashes, fails its checks, or the
device keeps restarting) is rolled back by the agent on its own, and the reason is kept in
`last_result` for the next heartbeat to carry to the hub.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from porchlight import atomic
from porchlight.errors import TransportFailed, UpdateRejected
from porchlight.provisioning import release_install as inst
from porchlight.provisioning.kiosk_control import KioskControl
from porchlight.provisioning.kiosk_status import read_status
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.release import read_release
from porchlight.provisioning.tuf_client import HttpFetcher, ReleaseClient
from porchlight.provisioning.update_policy import (
    Plan,
    Trial,
    UpdatePolicy,
    Verdict,
    busy_reason,
    install_decision,
    trial_decision,
)

log = logging.getLogger(__name__)

IDLE, INSTALLING, SWITCHING, TRIAL, ROLLING_BACK = (
    "idle",
    "installing",
    "switching",
    "trial",
    "rolling_back",
)


@dataclass
class AgentConfig:
    metadata_url: str
    targets_url: str
    bootstrap_root: Path | None = None  # default: DeviceLayout.bootstrap_root_path
    max_release_bytes: int = 300 * 1024 * 1024
    python: str = sys.executable  # makes each release's venv
    health_poll_s: float = 2.0
    policy: UpdatePolicy = field(default_factory=UpdatePolicy)

    @classmethod
    def for_hub(cls, hub_url: str, **kwargs: Any) -> AgentConfig:
        base = hub_url.rstrip("/")
        return cls(f"{base}/releases/metadata/", f"{base}/releases/targets/", **kwargs)


@dataclass
class Journal:
    """What the agent was doing, so the next run can finish or undo it."""

    phase: str = IDLE
    target: str | None = None
    from_version: str | None = None
    rollout_id: str | None = None
    trial_started_at: float | None = None
    trial_resumes: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    last_result: dict[str, Any] | None = None
    last_check_at: float | None = None
    last_plan: str | None = None
    # The last check's outcome, and the support request it answers (None: on the schedule).
    last_check: dict[str, Any] | None = None
    request_id: str | None = None

    @classmethod
    def load(cls, path: Path) -> Journal:
        import json

        try:
            data = json.loads(Path(path).read_text())
            known = {f.name for f in fields(cls)}
            return cls(**{k: v for k, v in data.items() if k in known})
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError):
            # A journal we cannot read: start idle; recover() still repairs the links.
            log.warning("update journal unreadable; starting from the links on disk")
            return cls()

    def save(self, path: Path) -> None:
        atomic.write_json(path, asdict(self))


@dataclass(frozen=True)
class CheckResult:
    # up_to_date, deferred, skipped, refused, rejected, unreachable, installed, rolled_back
    outcome: str
    version: str | None
    reason: str


class UpdateAgent:
    def __init__(
        self,
        layout: DeviceLayout,
        config: AgentConfig,
        *,
        installer: inst.Installer,
        kiosk: KioskControl,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        on_step: Callable[[str], None] | None = None,
        fetcher: HttpFetcher | None = None,
    ) -> None:
        self.layout = layout
        self.config = config
        self.installer = installer
        self.kiosk = kiosk
        self.clock = clock
        self.sleep = sleep
        self.on_step = on_step
        self.fetcher = fetcher or HttpFetcher()
        self.min_version: str | None = None

    # -- state ---------------------------------------------------------------------------

    def _step(self, name: str) -> None:
        if self.on_step is not None:
            self.on_step(name)

    def journal(self) -> Journal:
        return Journal.load(self.layout.update_state_path)

    def _save(self, journal: Journal) -> None:
        journal.save(self.layout.update_state_path)

    def current_version(self) -> str | None:
        return inst.link_version(self.layout, self.layout.current_link)

    def previous_version(self) -> str | None:
        return inst.link_version(self.layout, self.layout.previous_link)

    def status(self) -> dict[str, Any]:
        """The update part of the heartbeat: versions, phase, last result."""
        journal = self.journal()
        return {
            "current": self.current_version(),
            "previous": self.previous_version(),
            "phase": journal.phase,
            "target": journal.target,
            "failed": dict(journal.failed),
            "last_result": journal.last_result,
            "last_plan": journal.last_plan,
            "last_check": journal.last_check,
            "installed": inst.installed_versions(self.layout),
        }

    # -- recovery ------------------------------------------------------------------------

    def recover(self) -> CheckResult | None:
        """Finish or undo whatever a cut run left; returns the outcome if it settled a trial."""
        self.layout.update_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        journal = self.journal()
        inst.remove_incomplete(self.layout)
        for link in (self.layout.current_link, self.layout.previous_link):
            with contextlib.suppress(FileNotFoundError):
                self.layout.temporary_link(link).unlink()
        if journal.phase == INSTALLING:
            journal.phase = IDLE
            self._save(journal)
        elif journal.phase == SWITCHING:
            if self.current_version() == journal.target:
                journal.phase = TRIAL
                self._save(journal)
                self.kiosk.restart()
            else:
                journal.phase = IDLE  # the old release is still current; it will be retried
                self._save(journal)
        if journal.phase == TRIAL:
            journal.trial_resumes += 1
            self._save(journal)
            status = read_status(self.layout.kiosk_data_dir)
            if status is None or status.version != journal.target:
                self.kiosk.restart()
            return self._trial(journal)
        if journal.phase == ROLLING_BACK:
            return self._finish_rollback(journal)
        return None

    # -- one check -----------------------------------------------------------------------

    def _client(self) -> ReleaseClient:
        root_path = self.config.bootstrap_root or self.layout.bootstrap_root_path
        try:
            root = Path(root_path).read_bytes()
        except OSError:
            raise UpdateRejected(
                f"no trusted root at {root_path}; install the repository's root.json there"
            ) from None
        return ReleaseClient(
            metadata_dir=self.layout.tuf_metadata_dir,
            metadata_url=self.config.metadata_url,
            targets_url=self.config.targets_url,
            bootstrap_root=root,
            downloads_dir=self.layout.downloads_dir,
            max_release_bytes=self.config.max_release_bytes,
            fetcher=self.fetcher,
        )

    def _result(
        self,
        journal: Journal,
        outcome: str,
        version: str | None,
        reason: str,
        *,
        record: bool = True,
    ) -> CheckResult:
        journal.last_plan = f"{outcome}: {reason}"
        journal.last_check = {
            "at": self.clock(),
            "outcome": outcome,
            "version": version,
            "reason": reason,
            "request_id": journal.request_id,
        }
        if record:
            journal.last_result = {
                "version": version,
                "outcome": outcome,
                "reason": reason,
                "at": self.clock(),
                "rollout_id": journal.rollout_id,
            }
        self._save(journal)
        return CheckResult(outcome, version, reason)

    def check(
        self,
        wanted: str | None,
        *,
        rollout_id: str | None = None,
        request_id: str | None = None,
    ) -> CheckResult:
        """Bring the device to `wanted` (None: stay), if policy allows and it verifies.
        `request_id`: the support request this check answers (kept with its outcome)."""
        settled = self.recover()
        if settled is not None:
            return settled
        journal = self.journal()
        journal.last_check_at = self.clock()
        journal.request_id = request_id
        current = self.current_version()
        if wanted is None or wanted == current:
            return self._result(journal, "up_to_date", current, "up to date", record=False)
        journal.rollout_id = rollout_id
        try:
            client = self._client()
            self._step("refreshing")
            view = client.refresh()
            self.min_version = view.min_version
            busy = busy_reason(
                read_status(self.layout.kiosk_data_dir), self.clock(), self.config.policy
            )
            decision = install_decision(
                current=current,
                wanted=wanted,
                failed=journal.failed,
                min_version=view.min_version,
                busy=busy,
            )
            if decision.plan is Plan.REFUSE:
                return self._result(journal, "refused", wanted, decision.reason)
            if decision.plan is not Plan.INSTALL:
                outcome = "deferred" if decision.plan is Plan.DEFER else "skipped"
                return self._result(journal, outcome, wanted, decision.reason, record=False)
            if inst.is_complete(self.layout, wanted):
                # Already here (the previous release, or installed while the patient was
                # busy): it was verified when it was installed; just switch.
                return self._switch(journal, wanted, current)
            info = client.target_info(wanted)
            self._step("downloading")
            tar_path = client.download(info)
            self._step("downloaded")
            manifest = read_release(tar_path, wanted)
        except UpdateRejected as exc:
            return self._result(journal, "rejected", wanted, str(exc))
        except TransportFailed as exc:
            return self._result(journal, "unreachable", wanted, str(exc), record=False)
        return self._install_and_switch(journal, client, tar_path, manifest, current)

    def _install_and_switch(
        self,
        journal: Journal,
        client: ReleaseClient,
        tar_path: Path,
        manifest: Any,
        current: str | None,
    ) -> CheckResult:
        wanted = manifest.version
        journal.phase, journal.target = INSTALLING, wanted
        self._save(journal)
        self._step("installing")
        try:
            inst.install_release(self.layout, self.installer, tar_path, manifest)
        except UpdateRejected as exc:
            journal.phase = IDLE
            journal.failed[wanted] = str(exc)
            return self._result(journal, "rejected", wanted, str(exc))
        self._step("installed")
        busy = busy_reason(
            read_status(self.layout.kiosk_data_dir), self.clock(), self.config.policy
        )
        if busy:
            # Installed while the patient started something: switch at the next check.
            journal.phase = IDLE
            return self._result(journal, "deferred", wanted, f"waiting: {busy}", record=False)
        client.discard_downloads(keep=None)
        return self._switch(journal, wanted, current)

    def _switch(self, journal: Journal, wanted: str, current: str | None) -> CheckResult:
        journal.phase, journal.target, journal.from_version = SWITCHING, wanted, current
        journal.trial_started_at, journal.trial_resumes = self.clock(), 0
        self._save(journal)
        self._step("switching")
        if current is not None:
            inst.point(self.layout, self.layout.previous_link, current)
        self._step("previous-linked")
        inst.point(self.layout, self.layout.current_link, wanted)
        self._step("current-linked")
        journal.phase = TRIAL
        self._save(journal)
        self.kiosk.restart()
        self._step("restarted")
        return self._trial(journal)

    # -- trial, commit, rollback -----------------------------------------------------------

    def _trial(self, journal: Journal) -> CheckResult:
        assert journal.target is not None and journal.trial_started_at is not None
        policy = self.config.policy
        while True:
            trial = Trial(
                journal.target,
                journal.trial_started_at,
                self.kiosk.crashes(),
                journal.trial_resumes,
            )
            status = read_status(self.layout.kiosk_data_dir)
            decision = trial_decision(trial, status, self.clock(), policy)
            if decision.verdict is Verdict.COMMIT:
                return self._commit(journal, decision.reason)
            if decision.verdict is Verdict.ROLLBACK:
                return self._rollback(journal, decision.reason)
            self.sleep(self.config.health_poll_s)

    def _commit(self, journal: Journal, reason: str) -> CheckResult:
        version = journal.target
        journal.phase, journal.target = IDLE, None
        result = self._result(journal, "installed", version, reason)
        self._step("committed")
        keep = {self.current_version(), self.previous_version()}
        for old in inst.installed_versions(self.layout):
            if old not in keep:
                inst.remove_release(self.layout, old)
        return result

    def _rollback(self, journal: Journal, reason: str) -> CheckResult:
        log.warning("rolling back: %s", reason)
        journal.phase = ROLLING_BACK
        if journal.target is not None:
            journal.failed[journal.target] = reason
        self._result(journal, "rolled_back", journal.target, reason)
        self._step("rolling-back")
        return self._finish_rollback(journal)

    def _finish_rollback(self, journal: Journal) -> CheckResult:
        back_to = journal.from_version or self.previous_version()
        failed = journal.target
        if back_to is not None and self.current_version() != back_to:
            inst.point(self.layout, self.layout.current_link, back_to)
            self._step("rolled-back-link")
        self.kiosk.restart()
        self._step("rolled-back-restart")
        if failed is not None and failed not in (self.current_version(), self.previous_version()):
            inst.remove_release(self.layout, failed)
        journal.phase, journal.target = IDLE, None
        reason = (journal.last_result or {}).get("reason", "rolled back")
        self._save(journal)
        self._step("rolled-back")
        return CheckResult("rolled_back", failed, reason)
