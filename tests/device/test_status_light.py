"""StatusLight on gpiozero mock PWM pins: each pattern really drives the pin, on time."""

from __future__ import annotations

import time

import pytest

from porchlight.device.config import DeviceConfig
from porchlight.device.light import PATTERNS, StatusLight
from porchlight.errors import BadInput

# Timing slack for gpiozero's background threads on a busy CI machine. Fades get more: gpiozero
# steps them with one wait per 40 ms step, so under load the lateness adds up over a fade.
TOLERANCE_S = 0.15
FADE_TOLERANCE_S = 0.3


def light_on(pin: int, pin_factory) -> StatusLight:
    config = DeviceConfig(simulate=True, light_pin=pin, button_pin=2)
    return StatusLight(config, pin_factory=pin_factory)


@pytest.fixture
def light(pin_factory):
    status_light = light_on(27, pin_factory)
    yield status_light
    status_light.close()


def history(pin) -> list[tuple[float, float]]:
    """The mock pin's (seconds since clear_states, level) changes; gpiozero stores deltas."""
    t = 0.0
    out = []
    for delta, state in pin.states:
        t += delta
        out.append((t, float(state)))
    return out


def switch_times(name: str, count: int) -> list[float]:
    """When the pure pattern switches between off and on, sampled at 1 ms."""
    pattern = PATTERNS[name]
    times, previous, i = [], 0.0, 0
    while len(times) < count:
        level = pattern.level_at(i / 1000)
        if level != previous:
            times.append(i / 1000)
            previous = level
        i += 1
    return times


def wait_until(condition, timeout: float) -> None:
    """Poll a condition the gpiozero threads make true (they offer no event to wait on)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_every_pattern_drives_its_pin_as_the_pattern_says(pin_factory):
    # How many changes to watch for on each pin (after the initial state): about 3 s in all.
    wanted = {"steady": 1, "off": 0, "slow_blink": 3, "fast_blink": 12, "heartbeat": 5}
    wanted["breathing"] = 60
    pins = (5, 6, 13, 19, 26, 21)
    lights = {name: light_on(pin, pin_factory) for name, pin in zip(wanted, pins, strict=True)}
    try:
        for name, light in lights.items():
            light.pin.clear_states()
            light.show(name)
            assert light.pattern == name
        wait_until(lambda: all(len(lights[n].pin.states) > wanted[n] for n in lights), timeout=8.0)

        assert history(lights["off"].pin) == [(0.0, 0.0)]
        assert [v for _, v in history(lights["steady"].pin)] == [0.0, 1.0]

        for name in ("slow_blink", "fast_blink", "heartbeat"):
            changes = history(lights[name].pin)[1 : wanted[name] + 1]
            assert [v for _, v in changes] == [1.0, 0.0] * (wanted[name] // 2) + [1.0] * (
                wanted[name] % 2
            ), name
            expected = switch_times(name, wanted[name])
            assert [t for t, _ in changes] == pytest.approx(expected, abs=TOLERANCE_S), name

        # Breathing fades: every level the pin took is one the pattern has at about that time.
        pattern = PATTERNS["breathing"]
        changes = history(lights["breathing"].pin)[1:]
        assert max(v for _, v in changes) > 0.95
        assert len({round(v, 2) for _, v in changes}) > 20  # many steps, not on/off
        for t, v in changes:
            steps = int(FADE_TOLERANCE_S * 100)
            near = [pattern.level_at(t + d / 100) for d in range(-steps, steps + 1)]
            assert min(abs(v - x) for x in near) < 0.03, (t, v)
    finally:
        for light in lights.values():
            light.close()


@pytest.mark.parametrize(("moving", "still"), [("fast_blink", "steady"), ("heartbeat", "off")])
def test_switching_pattern_stops_the_old_rhythm(light, moving, still):
    light.show(moving)
    wait_until(lambda: len(light.pin.states) > 2, timeout=2.0)
    light.show(still)
    level = PATTERNS[still].constant
    assert light.value == level
    light.pin.clear_states()
    time.sleep(0.4)  # longer than a fast-blink period: a leftover thread would show
    assert history(light.pin) == [(0.0, level)]


def test_showing_the_same_pattern_again_keeps_its_rhythm(light):
    light.show("slow_blink")
    started = light.started_at
    light.show("slow_blink")
    assert light.started_at == started
    assert light.level_at(started + 0.5) == 1.0
    assert light.level_at(started + 1.5) == 0.0


def test_unknown_pattern_is_refused_and_changes_nothing(light):
    light.show("steady")
    with pytest.raises(BadInput, match="slow_blink"):
        light.show("disco")
    assert light.pattern == "steady"
    assert light.value == 1.0


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_every_shipped_pattern_moves_its_pin_unless_it_is_constant(pin_factory, name):
    light = light_on(20, pin_factory)
    try:
        light.pin.clear_states()
        light.show(name)
        if PATTERNS[name].constant is not None:
            assert light.value == PATTERNS[name].constant
        else:
            # It keeps changing: at least on, off, on again within a few seconds.
            wait_until(lambda: len(history(light.pin)) > 3, timeout=8.0)
    finally:
        light.close()
