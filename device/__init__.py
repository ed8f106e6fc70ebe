"""The kiosk's hardware, real on a Raspberry Pi and simulated anywhere else.

hardware.open_device() bundles it: button (button.py, over the pure button_logic.py), status
light (light.py, patterns in the pure light_patterns.py), speaker and speech (speaker.py,
speech.py), camera and microphone tracks (camera.py, audio.py). Also: systemd notify and
watchdog (watchdog.py) and the simulation control socket (sim_control.py).
"""
