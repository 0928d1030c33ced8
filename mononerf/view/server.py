"""The viser server of the space-time viewer: the browser page, its controls and the progressive render loop.

Every connected browser gets a render thread. A change of its camera, of the time, of the scene or of the output
asks for a new frame: first a coarse one (``coarse_height`` pixels high) as soon as possible, then, once nothing
changed for ``rest_s`` seconds, the full one (``fine_height``). A full render in progress is abandoned between two
chunks of rays when a new request arrives, so the page stays responsive on a CPU. One render runs at a time (a lock
shared by every browser): the network is the bottleneck.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

import numpy as np

from mononerf.errors import MonoNeRFError
from mononerf.utils.images import to_uint8
from mononerf.render.field import RenderCancelled
from mononerf.view.render import SceneView, ViewRequest, client_from_c2w, fov_y, menu

PLAY_TICK_S = 0.1  # how often the play loop advances the time slider


def check_port_free(host: str, port: int) -> None:
    """MonoNeRFError (one line) when ``host:port`` cannot be bound: viser itself would silently take the next port."""
    if not 0 < port < 65536:
        raise MonoNeRFError(f"--port {port} is not a TCP port (1..65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError as exc:
            raise MonoNeRFError(f"port {port} is in use on {host} ({exc.strerror}); choose another with --port") \
                from None


@dataclass
class RenderInfo:
    """What the last finished render was: for the status line and for tests."""

    seconds: float
    size: tuple[int, int]
    fine: bool
    frame: float
    output: str
    scene: str
    count: int


class _Client:
    """One browser: its render thread and the version of what it should show."""

    def __init__(self, viewer: "Viewer", client):
        self.viewer, self.client = viewer, client
        self.version = 0  # bumped by every change; a render is current while its version is
        self.changed_at = time.monotonic()
        self.wake = threading.Event()
        self.alive = True
        self.thread = threading.Thread(target=self._loop, name=f"render-{client.client_id}", daemon=True)

    def touch(self) -> None:
        self.version += 1
        self.changed_at = time.monotonic()
        self.wake.set()

    def stop(self) -> None:
        self.alive = False
        self.wake.set()

    def _request(self, height: int) -> ViewRequest | None:
        cam = self.client.camera
        try:
            aspect = float(cam.aspect)
        except AssertionError:  # no camera message from the browser yet
            return None
        return ViewRequest.from_client(cam.wxyz, cam.position, float(cam.fov), aspect, self.viewer.frame, height)

    def _loop(self) -> None:
        shown, refined = -1, True
        while self.alive:
            self.wake.wait(0.05)
            self.wake.clear()
            if not self.alive:
                break
            v = self.version
            if v != shown:
                fine = False
            elif not refined and time.monotonic() - self.changed_at >= self.viewer.rest_s:
                fine = True
            else:
                continue
            try:
                done = self._render(v, fine)
            except RenderCancelled:
                continue
            except Exception as exc:  # keep the page alive: show the error in the status line
                self.viewer.set_status(f"render failed: {type(exc).__name__}: {exc}")
                shown, refined = v, True
                continue
            if done:
                shown, refined = v, fine

    def _render(self, version: int, fine: bool) -> bool:
        """Render and show one frame. A full render stops as soon as anything changes; a coarse one always
        completes and is shown (while the time plays or the camera keeps moving, coarse frames are what the user
        sees), and the loop then renders the newer request."""
        vw = self.viewer
        req = self._request(vw.fine_height if fine else vw.coarse_height)
        if req is None:
            return False
        view, output = vw.view, vw.output
        if fine:
            def cancel():
                return self.version != version or not self.alive
        else:
            def cancel():
                return not self.alive
        with vw.render_lock:
            start = time.perf_counter()
            maps = view.render(req, cancel=cancel)
            image = view.image(req, output, maps)
            seconds = time.perf_counter() - start
        if fine and self.version != version:
            raise RenderCancelled
        self.client.scene.set_background_image(image, format="png")
        vw.finished(RenderInfo(seconds, req.size, fine, req.frame, output, view.name, 0))
        return True


class Viewer:
    """A viser server showing one loaded run (:func:`mononerf.eval.video.load_run`)."""

    def __init__(self, pipeline, step: int, host: str = "localhost", port: int = 8080, scene: int = 0,
                 coarse_height: int = 24, fine_height: int = 96, rest_s: float = 0.3, n_samples: int | None = None,
                 chunk: int = 512, verbose: bool = False):
        if coarse_height < 1 or fine_height < coarse_height:
            raise MonoNeRFError(f"render heights must satisfy 1 <= coarse ({coarse_height}) <= fine ({fine_height})")
        self.pipeline, self.step = pipeline, int(step)
        self.host, self.port, self.verbose = host, int(port), verbose
        self.coarse_height, self.fine_height, self.rest_s = int(coarse_height), int(fine_height), float(rest_s)
        self.n_samples, self.chunk = n_samples, int(chunk)
        self.names = list(pipeline.data.names)
        self.view = SceneView(pipeline, scene, chunk=self.chunk, n_samples=n_samples)
        self.num_frames = int(self.view.num_frames)  # the scene's (scenes of a run may differ in length)
        self.frame = 0.0
        self.output = "rgb"
        self.playing = False
        self.render_lock = threading.Lock()
        self.info_lock = threading.Condition()
        self.last: RenderInfo | None = None
        self.renders = 0
        self._clients: dict[int, _Client] = {}
        self._frustums: list = []
        self._stop = threading.Event()
        self.server = None

    # ------------------------------------------------------------------------------------------ lifecycle
    def start(self) -> "Viewer":
        import viser

        check_port_free(self.host, self.port)
        self.server = viser.ViserServer(host=self.host, port=self.port, label="MonoNeRF space-time viewer",
                                        verbose=self.verbose)
        if self.server.get_port() != self.port:  # lost a race for the port: viser moved to another one
            self.server.stop()
            raise MonoNeRFError(f"port {self.port} is in use on {self.host}; choose another with --port")
        self._build_gui()
        self._show_scene()
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)
        self._player = threading.Thread(target=self._play_loop, name="play", daemon=True)
        self._player.start()
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self._stop.set()
        for c in list(self._clients.values()):
            c.stop()
        for c in list(self._clients.values()):
            c.thread.join(timeout=30)
        if self.server is not None:
            self.server.stop()
        if getattr(self, "_player", None) is not None:
            self._player.join(timeout=5)

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return (safe from a signal handler)."""
        self._stop.set()

    def serve_forever(self) -> None:
        try:
            while not self._stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ------------------------------------------------------------------------------------------ state
    def finished(self, info: RenderInfo) -> None:
        with self.info_lock:
            self.renders += 1
            info.count = self.renders
            self.last = info
            self.info_lock.notify_all()
        h, w = info.size
        kind = "full" if info.fine else "coarse"
        self.set_status(f"frame {info.frame:.2f} · {kind} {w}x{h} · {info.seconds:.2f} s")

    def wait_render(self, predicate, timeout: float = 60.0) -> RenderInfo:
        """Block until the last render satisfies ``predicate(info)`` (tests); TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self.info_lock:
            while self.last is None or not predicate(self.last):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no matching render within {timeout} s (last: {self.last})")
                self.info_lock.wait(left)
            return self.last

    def set_status(self, text: str) -> None:
        if getattr(self, "_status", None) is not None:
            self._status.value = text

    def _touch_all(self) -> None:
        for c in list(self._clients.values()):
            c.touch()

    # ------------------------------------------------------------------------------------------ page
    def _build_gui(self) -> None:
        gui = self.server.gui
        gui.configure_theme(control_width="large")
        gui.add_markdown(f"**{self.pipeline.run_dir.name}** · step {self.step} · {self.num_frames} frames")
        self._scene = gui.add_dropdown("Scene", options=tuple(self.names), initial_value=self.view.name,
                                       disabled=len(self.names) < 2)
        self._time = gui.add_slider("Time (frame)", min=0.0, max=float(max(self.num_frames - 1, 1)), step=0.01,
                                    initial_value=0.0, disabled=self.num_frames < 2)
        self._play = gui.add_button("Play", disabled=self.num_frames < 2)
        self._speed = gui.add_slider("Speed (frames/s)", min=0.1, max=4.0, step=0.1, initial_value=1.0)
        shown = menu()
        labels = {label: key for key, label in shown.items()}
        self._output = gui.add_dropdown("Show", options=tuple(labels), initial_value=shown["rgb"])
        self._cams = gui.add_checkbox("Training cameras", initial_value=True)
        self._to_cam = gui.add_button("Go to training camera")
        self._status = gui.add_text("Status", initial_value="waiting for the browser's camera…", disabled=True)

        @self._time.on_update
        def _(_) -> None:
            self.frame = float(self._time.value)
            self._touch_all()

        @self._play.on_click
        def _(_) -> None:
            self.playing = not self.playing
            self._play.label = "Pause" if self.playing else "Play"

        @self._output.on_update
        def _(_) -> None:
            self.output = labels[self._output.value]
            self._touch_all()

        @self._scene.on_update
        def _(_) -> None:
            b = self.names.index(self._scene.value)
            if b != self.view.run_scene:
                with self.render_lock:
                    self.view = SceneView(self.pipeline, b, chunk=self.chunk, n_samples=self.n_samples)
                    if self.view.num_frames != self.num_frames:  # a scene of another length
                        self.num_frames = int(self.view.num_frames)
                        self._time.max = float(max(self.num_frames - 1, 1))
                        self._time.value = min(float(self._time.value), float(self.num_frames - 1))
                self._show_scene()
                for c in list(self._clients.values()):
                    self._reset_camera(c.client, view=0, pull_back=4.0 * self._frustum_scale())
                self._touch_all()

        @self._cams.on_update
        def _(_) -> None:
            for f in self._frustums:
                f.visible = bool(self._cams.value)

        @self._to_cam.on_click
        def _(event) -> None:
            self._go_to(event.client, int(round(self.frame)))

    def _frustum_scale(self) -> float:
        """Frustum size: a tenth of the scene's nearest depth bound (forward-facing captures: the cameras sit close
        together, in front of the scene)."""
        return 0.1 * float(self.view.pipeline.data.bds[self.view.scene].min())

    def _show_scene(self) -> None:
        """Frustums of the training cameras of the current scene, with their frame thumbnails."""
        d = self.view.pipeline.data  # the scene's group (scenes of a run may differ in size)
        b = self.view.scene
        for f in self._frustums:
            f.remove()
        self._frustums = []
        poses = d.poses[b].double().cpu().numpy()
        self.server.scene.set_up_direction(tuple(float(x) for x in poses[:, :3, 1].mean(0)))
        h0, w0, f0 = self.view.ndc_hwf
        step = max(1, int(np.ceil(max(h0, w0) / 64)))  # thumbnails of at most 64 pixels
        scale = self._frustum_scale()
        for k in range(d.num_frames):
            wxyz, pos = client_from_c2w(poses[k])
            thumb = to_uint8(d.images[b, k, ::step, ::step])
            handle = self.server.scene.add_camera_frustum(
                f"/cameras/{k:03d}", fov=fov_y(h0, f0), aspect=w0 / h0, scale=scale, image=thumb, format="png",
                wxyz=wxyz, position=pos, color=(40, 90, 200), thickness=1.5, thickness_units="screen",
                visible=bool(self._cams.value))

            @handle.on_click
            def _(event, k=k) -> None:
                self._go_to(event.client, k)
                self._time.value = float(k)

            self._frustums.append(handle)

    def _go_to(self, client, view: int) -> None:
        """A browser's camera exactly at a training camera; the frustums are hidden (the camera's own frustum, with
        its frame, would cover the whole view): the render compares with the frame itself."""
        if client is not None:
            self._cams.value = False
            self._reset_camera(client, view)

    def _reset_camera(self, client, view: int = 0, pull_back: float = 0.0) -> None:
        """Put a browser's camera at training camera ``view`` of the current scene, ``pull_back`` scene units behind
        it (forward-facing scenes: start near the cameras and orbit around a point at the middle of the depth
        bounds)."""
        d = self.view.pipeline.data  # the scene's group (scenes of a run may differ in size)
        b = self.view.scene
        c2w = d.poses[b, view, :, :4].double().cpu().numpy()
        near, far = (float(x) for x in d.bds[b, view].double().cpu())
        depth = float(np.sqrt(max(near, 1e-3) * max(far, 1e-3)))
        h0, w0, f0 = self.view.ndc_hwf
        with client.atomic():
            client.camera.fov = fov_y(h0, f0)
            client.camera.up_direction = c2w[:, 1]
            client.camera.position = c2w[:, 3] + pull_back * c2w[:, 2]
            client.camera.look_at = c2w[:, 3] - depth * c2w[:, 2]

    # ------------------------------------------------------------------------------------------ clients
    def _connect(self, client) -> None:
        c = _Client(self, client)
        self._clients[client.client_id] = c
        # a little behind the first camera: the training frustums are in view, small, in front
        self._reset_camera(client, view=0, pull_back=4.0 * self._frustum_scale())

        @client.camera.on_update
        def _(_) -> None:
            c.touch()

        c.thread.start()
        c.touch()

    def _disconnect(self, client) -> None:
        c = self._clients.pop(client.client_id, None)
        if c is not None:
            c.stop()

    def _play_loop(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(PLAY_TICK_S):
            now = time.monotonic()
            if self.playing and self.num_frames > 1:
                frame = self.frame + float(self._speed.value) * (now - last)
                span = float(self.num_frames - 1)
                self._time.value = round(frame % span if frame > span else frame, 2)
            last = now
