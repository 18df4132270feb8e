"""Fragment helpers Streamlit has no public call for."""

from __future__ import annotations

from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.scriptrunner_utils.script_run_context import ThreadState, get_script_run_ctx


def stop_own_timer() -> None:
    """Stop the ``run_every`` timer of the fragment this is called in (a no-op outside a fragment).

    Streamlit sends this message itself when a timed fragment is no longer drawn; a fragment that has
    done its one timed job sends it for itself, so the browser stops asking for reruns.
    """
    ctx = get_script_run_ctx(suppress_warning=True)
    fragment_id = ThreadState.get().fragment_id
    if ctx is None or fragment_id is None:
        return
    msg = ForwardMsg()
    msg.stop_auto_rerun.fragment_ids.append(fragment_id)
    ctx.enqueue(msg)
