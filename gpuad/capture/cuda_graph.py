"""``GraphedProgram``: a Program whose device work is replayed as CUDA graphs.

The program is cut at its replayable host calls (``zero_grad``, ``optimizer.step``):
each stretch of device work between two calls is captured once, on a side stream, as
one CUDA graph. A replay copies the inputs into static buffers, then launches each graph
on the current stream, sets the ``.grad`` that backward set (host bookkeeping, the same
static arrays every time) and makes the call that follows, which runs eagerly.

Every array the capture allocated comes from a private section of gpuad's pool, so no
other array ever takes an address a graph writes to; the section is given back when the
GraphedProgram goes. A replay's ``.grad`` tensors are views of the graph's static
arrays, which the next replay overwrites (as with PyTorch's CUDA graphs): copy a gradient
to keep it across steps. Capture and replay run in the program's GPU, whichever is
current; ``step`` graphs only programs whose tensors all live there.
"""
import contextlib

from ..backends import backend_for
from ..memory.pool import PrivatePool
from .program import Program


class CaptureError(RuntimeError):
    """The step's device work could not be captured (a host sync, an unsupported call)."""


class GraphedProgram:
    """``run(arrays)`` like ``Program.run``, with the device work in CUDA graphs."""

    def __init__(self, program, device):
        self.program = program
        self.backend = backend_for(device)
        self.xp = self.backend.xp
        self.segments = _segments(program)
        self.graphs = None
        self.private = None
        self.slots = self.inputs = None
        self.stream = None  # where the graphs were launched last

    def stale(self):
        return self.program.stale()

    def run(self, inputs):
        with self.backend.device_scope:  # the program's GPU, whichever is current
            return self._run(inputs)

    def _run(self, inputs):
        if self.graphs is None or any(
                self.slots[i] is not t._data for i, t in self.program.refresh):
            self._capture(inputs)  # first run, or a parameter's array was replaced
        else:
            for static, a in zip(self.inputs, inputs):
                self.xp.copyto(static, a)
        stream = self.stream = self.xp.cuda.get_current_stream()
        s = self.slots
        for graph, (_, host, call) in zip(self.graphs, self.segments):
            if graph is not None:
                graph.launch(stream)
            for run, ins, _, _ in host:
                run(*[s[i] for i in ins])
            if call is not None:
                call[0]()
        for i in self.program.written_inputs:  # an in-place change reaches the caller
            self.xp.copyto(inputs[i], s[i])
        out = list(s)
        for i in self.program.result_slots:  # the next replay overwrites the static ones
            out[i] = s[i].copy()
        return self.program.result(out)

    def _capture(self, inputs):
        xp, program = self.xp, self.program
        self.release()
        s = program.template.copy()
        s[:program.n_inputs] = self.inputs = [a.copy() for a in inputs]
        for i, t in program.refresh:
            s[i] = t._data
        capture = xp.cuda.Stream(non_blocking=True)  # of the program's GPU (current here)
        capture.wait_event(xp.cuda.get_current_stream().record())  # the input copies
        self.private = PrivatePool()
        graphs = []
        try:
            with self.backend.pool.private(self.private), capture:
                for device_steps, _, _ in self.segments:
                    if not device_steps:
                        graphs.append(None)
                        continue
                    capture.begin_capture()
                    try:
                        # a slot dropped after its last use gives its block back to the
                        # private section: reused later in this capture, in stream order
                        Program.run_steps(s, device_steps)
                    except BaseException:
                        _end_failed_capture(capture)
                        raise
                    graphs.append(capture.end_capture())
        except Exception as e:
            self.release()
            raise CaptureError(f"{type(e).__name__}: {e}") from e
        self.graphs, self.slots = graphs, s

    def release(self):
        """Drop the graphs and hand their private memory back to the shared pool."""
        self.graphs = self.slots = None
        if self.private is not None:
            # its blocks are reused next on the stream that ran the graphs, after them
            with self.backend.device_scope, self.stream or contextlib.nullcontext():
                self.backend.pool.close(self.private)
            self.private = None

    def __del__(self):
        if self.private is not None:
            self.release()


def _end_failed_capture(stream):
    """End a capture that a step broke. CUDA then reports the capture invalidated
    (cudaErrorStreamCaptureInvalidated), an effect of the step's error: that one is what
    the user needs to see, so the invalidation is not raised over it."""
    try:
        stream.end_capture()
    except Exception:
        pass


def _segments(program):
    """``[(device steps, .grad steps, call step or None)]``: the program cut at its calls.

    A ``.grad`` step runs after its stretch's graph, so the arrays it reads must outlive
    the capture: device steps keep every slot a ``.grad`` step reads (in program order, a
    later device step may be its last use and drop it)."""
    host_reads = {i for k, (_, ins, _, _) in enumerate(program.steps)
                  if program.host_steps.get(k) == "grad" for i in ins}
    segments, device, grads = [], [], []
    for k, step in enumerate(program.steps):
        kind = program.host_steps.get(k)
        if kind == "call":
            segments.append((tuple(device), tuple(grads), step))
            device, grads = [], []
        elif kind == "grad":
            grads.append(step)
        else:
            run, ins, outs, drop = step
            device.append((run, ins, outs, tuple(i for i in drop if i not in host_reads)))
    segments.append((tuple(device), tuple(grads), None))
    return segments
