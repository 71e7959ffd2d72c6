"""Worker processes kept from the index stage to the check stage.

The index stage parses the files that can hold project facts, and the check stage wants
the same trees. Worker processes forked for each stage apart lost the first stage's
trees, so every file the index read was parsed twice (48 of torch's nn/optim/utils files:
0.39 s of CPU, a ninth of a cold run). These workers live through both stages: a file is
checked by the worker that parsed it for the index (its tree waits there, in
lint._PARSED), the other files go to whichever worker is free, and a free worker with
nothing else to do takes another's file (and parses it again) rather than wait.
"""

from __future__ import annotations



def _serve(conn) -> None:
    """A worker: run `function` over each batch of items it is sent, until told to stop."""
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        function, items = message
        try:
            reply = ("ok", [function(item) for item in items])
        except BaseException as exc:  # the caller re-raises it, as a process pool does
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception:  # an error (or result) that does not pickle: say what it was
            conn.send(("error", RuntimeError(f"{type(reply[1]).__name__}: {reply[1]}")))


class Workers:
    """`jobs` forked worker processes, started on first use; `close()` ends them."""

    # A free worker with nothing of its own or shared left takes another's item rather than
    # wait (parsing it again): off, each item goes only to the worker that keeps its tree.
    STEALS = True

    def __init__(self, jobs: int):
        self.jobs = jobs
        self._conns: list = []
        self._processes: list = []
        self._owner: dict = {}  # an item's key -> the worker that keeps what it made of it

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:
                pass
        for process in self._processes:
            process.join(5)
            if process.is_alive():
                process.kill()
        self._conns, self._processes, self._owner = [], [], {}

    @property
    def started(self) -> bool:
        return bool(self._processes)

    def _start(self) -> None:
        import multiprocessing  # only when there is work for processes: 12 ms, 3% of a run after an edit

        context = multiprocessing.get_context("fork")
        for _ in range(self.jobs):
            here, there = context.Pipe()
            process = context.Process(target=_serve, args=(there,), daemon=True)
            process.start()
            there.close()
            self._conns.append(here)
            self._processes.append(process)

    def spread(self, function, items: list, keys: list, sizes: list[int], meanwhile=None) -> list:
        """`[function(item) for item in items]`, the items shared out by size, each worker
        given its whole share at once (so that `meanwhile()` can run here meanwhile); each
        item's key is remembered with the worker that took it."""
        if not self._processes:
            self._start()
        shares: list[list[int]] = [[] for _ in self._conns]
        loads = [0] * len(self._conns)
        for i in sorted(range(len(items)), key=lambda i: -sizes[i]):  # largest first, to the least loaded
            worker = loads.index(min(loads))
            shares[worker].append(i)
            loads[worker] += sizes[i]
        for worker, share in enumerate(shares):
            self._conns[worker].send((function, [items[i] for i in share]))
            for i in share:
                self._owner[keys[i]] = worker
        if meanwhile is not None:
            meanwhile()
        results: list = [None] * len(items)
        for worker, share in enumerate(shares):
            for i, result in zip(share, self._receive(worker)):
                results[i] = result
        return results

    def each(self, function, argument) -> None:
        """Run `function(argument)` once in every worker (state the next `map` reads)."""
        if not self._processes:
            self._start()
        for conn in self._conns:
            conn.send((function, [argument]))
        for worker in range(len(self._conns)):
            self._receive(worker)

    def map(self, function, items: list, keys: list) -> list:
        """`[function(item) for item in items]`: an item whose key a worker took in `spread`
        goes to that worker, the rest to whichever is free, in chunks."""
        if not self._processes:
            self._start()
        own: list[list[int]] = [[] for _ in self._conns]
        shared: list[int] = []
        for i, key in enumerate(keys):
            worker = self._owner.get(key)
            (own[worker] if worker is not None else shared).append(i)
        for queue in own:
            queue.reverse()  # taken from the end, in the items' order
        shared.reverse()
        chunk = max(1, len(items) // (len(self._conns) * 8))
        results: list = [None] * len(items)
        sent: dict[int, list[int]] = {}

        def send(worker: int) -> None:
            queue = own[worker] or shared or (max(own, key=len) if self.STEALS else [])  # its own, the shared, then another's
            batch = [queue.pop() for _ in range(min(chunk, len(queue)))]
            if batch:
                sent[worker] = batch
                self._conns[worker].send((function, [items[i] for i in batch]))

        for worker in range(len(self._conns)):
            send(worker)
        from multiprocessing.connection import wait

        while sent:
            ready = wait([self._conns[w] for w in sent] + [self._processes[w].sentinel for w in sent])
            for worker in list(sent):
                if self._conns[worker] in ready or self._processes[worker].sentinel in ready:
                    for i, result in zip(sent.pop(worker), self._receive(worker)):
                        results[i] = result
                    send(worker)
        return results

    def _receive(self, worker: int) -> list:
        try:
            status, value = self._conns[worker].recv()
        except (EOFError, OSError):
            raise RuntimeError("a worker process stopped before it answered") from None
        if status == "error":
            raise value
        return value
