"""The load shedder's levels, hysteresis, per-utterance thinning and bounded memory, with
explicit times; its settings keys; and the torch caps of habla_common.limits."""

from __future__ import annotations

import pytest
from prometheus_client.registry import REGISTRY

from habla_common import shedding
from habla_common.errors import ConfigError
from habla_common.limits import cap_torch, gpu_memory_fraction
from habla_common.settings import Settings, ShedPolicy
from habla_common.shedding import FINALS_ONLY, NORMAL, THIN, LoadShedder, current_level
from habla_contracts import SpeechTurn, SpeechWindow

T0 = 1_700_000_000.0  # a wall-clock time; received_at values are relative to it


def window(received_at: float, utterance: str = "u1", session: str = "s1", index: int = 0) -> SpeechWindow:
    return SpeechWindow(session_id=session, utterance_id=utterance, window_index=index, received_at=received_at)


def turn(received_at: float, utterance: str = "u1") -> SpeechTurn:
    return SpeechTurn(session_id="s1", utterance_id=utterance, received_at=received_at)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_behind_is_measured_from_the_oldest_stamped_event_and_is_zero_when_idle() -> None:
    shed = LoadShedder(ShedPolicy(), "t-behind")
    assert shed.observe([window(T0 - 0.4), turn(T0 - 1.5), window(0.0)], T0) == NORMAL
    assert shed.behind == pytest.approx(1.5)  # the unstamped window does not count
    assert sample("habla_consumer_behind_seconds", service="t-behind") == pytest.approx(1.5)
    shed.observe([], T0 + 1)
    assert shed.behind == 0.0
    shed.observe([window(0.0)], T0 + 2)  # nothing stamped: nothing to be behind on
    assert shed.behind == 0.0
    shed.observe([window(T0 + 5)], T0 + 3)  # a clock a little ahead of ours is not "ahead of live"
    assert shed.behind == 0.0


def test_levels_go_up_at_once_and_down_one_step_after_a_quiet_hold() -> None:
    policy = ShedPolicy(thin_at_s=2.0, finals_only_at_s=5.0, hold_s=3.0, recover=0.5)
    shed = LoadShedder(policy, "t-levels")
    t = T0
    assert shed.observe([window(t - 1.9)], t) == NORMAL
    assert shed.observe([window(t - 2.0)], t) == THIN
    assert sample("habla_shed_level", service="t-levels") == THIN
    t += 1
    assert shed.observe([turn(t - 6.0)], t) == FINALS_ONLY  # straight up past both thresholds
    # caught up, but the last reading at or above 2.5 s (0.5 x 5) was under 3 s ago: stays
    t += 1
    assert shed.observe([window(t - 0.1)], t) == FINALS_ONLY
    t += 1.9
    assert shed.observe([window(t - 2.6)], t) == FINALS_ONLY  # 2.6 >= 2.5 restarts the hold
    t += 2.9
    assert shed.observe([], t) == FINALS_ONLY
    t += 0.2  # 3.1 s of readings under 2.5 s: one step down
    assert shed.observe([window(t - 2.4)], t) == THIN
    # to leave THIN, readings must stay under 1.0 s (0.5 x 2) for 3 s; 2.4 s was one
    t += 2.0
    assert shed.observe([window(t - 0.5)], t) == THIN
    t += 1.1
    assert shed.observe([window(t - 0.5)], t) == NORMAL
    assert sample("habla_shed_level", service="t-levels") == NORMAL


def test_without_a_hold_a_level_is_left_as_soon_as_behind_drops_under_the_recover_mark() -> None:
    shed = LoadShedder(ShedPolicy(hold_s=0.0), "t-nohold")
    assert shed.observe([window(T0 - 5.5)], T0) == FINALS_ONLY
    assert shed.observe([window(T0 - 2.6)], T0) == FINALS_ONLY  # hysteresis: 2.6 >= 0.5 x 5
    assert shed.observe([window(T0 - 2.4)], T0) == THIN  # one step per reading
    assert shed.observe([window(T0 - 1.2)], T0) == THIN  # 1.2 >= 0.5 x 2
    assert shed.observe([window(T0 - 0.9)], T0) == NORMAL


def test_thinning_keeps_one_partial_per_interval_per_utterance_and_finals_only_keeps_none() -> None:
    shed = LoadShedder(ShedPolicy(thin_interval_s=2.0), "t-thin")
    shed0 = sample("habla_shed_total", service="t-thin", kind="speech.window")
    t = T0
    assert shed.keep(window(t, "a"), t)  # normal: everything, and it is remembered
    shed.observe([window(t - 3.0)], t)
    assert shed.level == THIN
    assert not shed.keep(window(t, "a"), t + 1.0)  # a's last kept partial is 1 s old
    assert shed.keep(window(t, "b"), t + 1.0)  # b has none yet: its first words show
    assert shed.keep(window(t, "a", session="s2"), t + 1.0)  # same utterance id, other session
    assert shed.keep(window(t, "a"), t + 2.0)
    assert not shed.keep(window(t, "a"), t + 3.9)
    assert shed.keep(window(t, "a"), t + 4.0)
    assert not shed.keep(window(t, "b"), t + 2.5)
    assert shed.keep(window(t, "b"), t + 3.0)
    shed.observe([window(t - 6.0)], t + 4.0)
    assert shed.level == FINALS_ONLY
    assert not any(shed.keep(window(t, u), t + 60.0) for u in ("a", "b", "c"))
    assert sample("habla_shed_total", service="t-thin", kind="speech.window") - shed0 == 6


def test_thinning_counts_from_the_end_of_the_last_partial_so_slow_partials_are_spaced_out() -> None:
    shed = LoadShedder(ShedPolicy(thin_interval_s=2.0), "t-done")
    shed.observe([window(T0 - 3.0)], T0)
    assert shed.level == THIN
    assert shed.keep(window(T0, "a"), T0)
    shed.done(window(T0, "a"), T0 + 3.0)  # that partial took 3 s, longer than the interval
    assert not shed.keep(window(T0, "a"), T0 + 4.0)  # 4 s after it started, 1 s after it ended
    assert shed.keep(window(T0, "a"), T0 + 5.0)


def test_memory_of_utterances_is_bounded_least_recently_kept_first() -> None:
    shed = LoadShedder(ShedPolicy(thin_interval_s=10.0), "t-lru", max_utterances=3)
    for i in range(10):
        assert shed.keep(window(T0, f"u{i}"), T0 + i)
    assert shed.tracked == 3
    shed.observe([window(T0 + 7.5)], T0 + 10)
    assert shed.level == THIN
    assert not shed.keep(window(T0, "u9"), T0 + 11)  # remembered: kept 2 s ago
    assert shed.keep(window(T0, "u0"), T0 + 11)  # forgotten long ago: counts as a first partial
    assert shed.tracked == 3
    with pytest.raises(ValueError):
        LoadShedder(ShedPolicy(), "t-lru", max_utterances=0)


def test_current_level_is_the_installed_consumers() -> None:
    shed = LoadShedder(ShedPolicy(), "t-current")
    assert current_level() == NORMAL  # nothing installed
    shedding.install(shed)
    try:
        shed.observe([window(T0 - 2.2)], T0)
        assert current_level() == THIN
        shed.observe([window(T0 - 7.0)], T0)
        assert current_level() == FINALS_ONLY
    finally:
        shedding.install(None)
    assert current_level() == NORMAL


def test_policy_keys_a_services_own_key_wins_and_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    for prefix in ("HABLA", "ASR", "TRANSLATE"):
        for name in ("SHED", "SHED_THIN_S", "SHED_FINALS_ONLY_S", "SHED_THIN_INTERVAL_S", "SHED_HOLD_S"):
            monkeypatch.delenv(f"{prefix}_{name}", raising=False)
    assert Settings.from_env("asr").shed == ShedPolicy()
    assert ShedPolicy().enabled and (ShedPolicy().thin_at_s, ShedPolicy().finals_only_at_s) == (2.0, 5.0)
    monkeypatch.setenv("HABLA_SHED_THIN_S", "3")
    monkeypatch.setenv("HABLA_SHED_FINALS_ONLY_S", "8")
    monkeypatch.setenv("ASR_SHED_THIN_S", "1.5")
    monkeypatch.setenv("ASR_SHED_THIN_INTERVAL_S", "4")
    asr, translate = Settings.from_env("asr").shed, Settings.from_env("translate").shed
    assert (asr.thin_at_s, asr.finals_only_at_s, asr.thin_interval_s) == (1.5, 8.0, 4.0)
    assert (translate.thin_at_s, translate.finals_only_at_s, translate.thin_interval_s) == (3.0, 8.0, 2.0)
    monkeypatch.setenv("TRANSLATE_SHED", "off")
    assert not Settings.from_env("translate").shed.enabled and Settings.from_env("asr").shed.enabled
    monkeypatch.setenv("ASR_SHED_THIN_S", "soon")
    with pytest.raises(ConfigError, match="ASR_SHED_THIN_S"):
        Settings.from_env("asr")
    monkeypatch.setenv("ASR_SHED_THIN_S", "9")
    with pytest.raises(ConfigError, match="must be above HABLA_SHED_THIN_S"):
        Settings.from_env("asr")
    for bad in (dict(thin_at_s=0.0), dict(thin_interval_s=-1.0), dict(hold_s=-1.0), dict(recover=0.0)):
        with pytest.raises(ConfigError):
            ShedPolicy(**bad)  # type: ignore[arg-type]


def test_gpu_memory_fraction_is_checked_and_a_services_own_key_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HABLA_GPU_MEMORY_FRACTION", raising=False)
    monkeypatch.delenv("DIARIZE_GPU_MEMORY_FRACTION", raising=False)
    assert gpu_memory_fraction("diarize") is None
    monkeypatch.setenv("HABLA_GPU_MEMORY_FRACTION", "0.5")
    assert gpu_memory_fraction("diarize") == 0.5
    monkeypatch.setenv("DIARIZE_GPU_MEMORY_FRACTION", "0.25")
    assert gpu_memory_fraction("diarize") == 0.25
    for bad in ("0", "1.5", "-0.2", "half"):
        monkeypatch.setenv("DIARIZE_GPU_MEMORY_FRACTION", bad)
        with pytest.raises(ConfigError, match="DIARIZE_GPU_MEMORY_FRACTION"):
            gpu_memory_fraction("diarize")


def test_torch_threads_are_capped_and_without_cuda_the_memory_cap_does_nothing() -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        assert cap_torch(threads=1) is False
        assert torch.get_num_threads() == 1
        applied = cap_torch(gpu_memory_fraction=0.5)
        assert applied is torch.cuda.is_available()
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ConfigError):
        cap_torch(threads=-1)


def test_a_consumer_with_nothing_to_shed_reports_how_far_behind_it_is_but_keeps_level_0() -> None:
    """The recorder reads finals only: its input can be late (a slow translation), but it has
    no partials to give up, so its level must not claim it is shedding."""
    shed = LoadShedder(ShedPolicy(), "t-passive", sheds=False)
    assert shed.observe([turn(T0 - 30.0)], T0) == NORMAL
    assert shed.level == NORMAL and shed.behind == pytest.approx(30.0)
    assert sample("habla_consumer_behind_seconds", service="t-passive") == pytest.approx(30.0)
    assert sample("habla_shed_level", service="t-passive") == NORMAL


def test_translate_starts_from_higher_thresholds_and_keys_still_win(monkeypatch: pytest.MonkeyPatch) -> None:
    """translate's input (ASR's output) is seconds old by design on a laptop CPU."""
    for key in ("HABLA_SHED_THIN_S", "HABLA_SHED_FINALS_ONLY_S", "TRANSLATE_SHED_THIN_S"):
        monkeypatch.delenv(key, raising=False)
    assert (ShedPolicy.from_env("asr").thin_at_s, ShedPolicy.from_env("asr").finals_only_at_s) == (2.0, 5.0)
    translate = ShedPolicy.from_env("translate")
    assert (translate.thin_at_s, translate.finals_only_at_s) == (6.0, 12.0)
    monkeypatch.setenv("TRANSLATE_SHED_THIN_S", "4")
    assert ShedPolicy.from_env("translate").thin_at_s == 4.0
