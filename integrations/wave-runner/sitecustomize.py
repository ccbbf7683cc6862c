"""Activates the wave-sessions bridge in the WAVE runner's processes.

Put this folder on the runner's PYTHONPATH and set WAVE_SESSIONS_URL (see
wave_sessions_bridge/runner.py). Python imports the first sitecustomize.py on
its path; this one then runs the next one after its own folder, if any, so
that it shadows nothing.
"""


def _activate():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.append(here)
    try:
        from wave_sessions_bridge import runner

        runner.activate()
    except Exception as e:  # never stop the runner
        sys.stderr.write("wave-sessions bridge: not activated: %r\n" % (e,))


def _chain_next_sitecustomize():
    import importlib.util
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    entries = [os.path.abspath(e) for e in sys.path if e]
    if here not in entries:
        return
    for entry in entries[entries.index(here) + 1 :]:
        candidate = os.path.join(entry, "sitecustomize.py")
        if os.path.isfile(candidate):
            already = [m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == candidate]
            if already:
                return
            spec = importlib.util.spec_from_file_location("_wave_bridge_next_sitecustomize", candidate)
            module = importlib.util.module_from_spec(spec)
            sys.modules["_wave_bridge_next_sitecustomize"] = module
            spec.loader.exec_module(module)
            return


_activate()
_chain_next_sitecustomize()
