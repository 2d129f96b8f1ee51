"""Hostile SavedModels built in code: a model is a program, and these try
what an attacker on a shared server would. Each one runs TensorFlow file ops
(``tf.io.write_file`` / ``tf.io.read_file``) at load time (a resource
initializer, which runs inside ``TFLiteConverter.from_saved_model``) or at
run time (the serving function, which runs during evaluation), or reaches
for the network (``gs://``, which makes TensorFlow open an HTTP connection).

Built in a subprocess so the test process does not carry TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

_BUILD = textwrap.dedent(
    """
    import json, os, sys
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np, tensorflow as tf
    out, plan = sys.argv[1], json.loads(sys.argv[2])

    class Planter(tf.saved_model.experimental.TrackableResource):
        # A resource whose initializer runs file ops when the model is loaded.
        def __init__(self, ops):
            super().__init__()
            self.ops = ops

        def _create_resource(self):
            return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[], shared_name="planter")

        def _initialize(self):
            deps = []
            for op in self.ops:
                if op["do"] == "write":
                    deps.append(tf.io.write_file(op["path"], op["text"]))
                elif op["do"] == "copy":  # read a secret, write it somewhere readable
                    deps.append(tf.io.write_file(op["to"], tf.io.read_file(op["from"])))
                elif op["do"] == "net":
                    deps.append(tf.io.read_file(op["url"]))
            with tf.control_dependencies(deps):
                tf.raw_ops.AssignVariableOp(resource=self.resource_handle,
                                            value=tf.constant(1.0))
            return tf.constant(0)

    def model(name, on_load=(), on_serve=()):
        class M(tf.Module):
            def __init__(self):
                super().__init__()
                self.planter = Planter(list(on_load)) if on_load else None
                self.w = tf.Variable(tf.ones([4, 3]))

            @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="x")])
            def serve(self, x):
                deps = []
                if self.planter is not None:  # the resource is used, so loading initializes it
                    deps.append(tf.raw_ops.ReadVariableOp(
                        resource=self.planter.resource_handle, dtype=tf.float32))
                for op in on_serve:
                    if op["do"] == "write":
                        deps.append(tf.io.write_file(op["path"], op["text"]))
                    elif op["do"] == "copy":
                        deps.append(tf.io.write_file(op["to"], tf.io.read_file(op["from"])))
                    elif op["do"] == "net":
                        deps.append(tf.io.read_file(op["url"]))
                y = tf.nn.softmax(tf.matmul(x, self.w))
                with tf.control_dependencies(deps):
                    return {"y": tf.identity(y)}
        m = M()
        tf.saved_model.save(m, f"{out}/{name}", signatures={"serving_default": m.serve})

    for name, spec in plan.items():
        model(name, spec.get("on_load", ()), spec.get("on_serve", ()))
    np.savez(f"{out}/cal.npz", x=np.random.rand(32, 4).astype("float32"))
    """
)


def build_hostile_models(out: Path, plan: dict[str, dict[str, list[dict[str, str]]]]) -> Path:
    """``plan``: model name -> {"on_load": [ops], "on_serve": [ops]}, each op
    ``{"do": "write", "path", "text"}``, ``{"do": "copy", "from", "to"}`` or
    ``{"do": "net", "url"}``. Writes one SavedModel folder per name and a
    calibration ``cal.npz`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", _BUILD, str(out), json.dumps(plan)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out
