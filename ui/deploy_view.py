"""The "Deploy" view: the deploy kit of any result (a conversion, an
optimization or an uploaded ``.tflite``) built by a DEPLOY job, its code
blocks per target (each with Streamlit's copy button) and the kit's zip.

The page holds only job ids; the kit's files come from the job's record."""

from __future__ import annotations

import streamlit as st

from core.errors import StudioError
from core.server import jobs
from core.server.optimize_jobs import deploy_params, origin_words, submit_deploy, tflite_of
from core.tasks.deploy import TARGET_TITLES, TARGETS, DeployResult
from ui import job_view
from ui.errors import show_error
from ui.format import human_bytes, md
from ui.identity import current_user

__all__ = ["DEPLOY_PARAM", "show_deploy", "show_kit"]

DEPLOY_PARAM = "deploy"  # the DEPLOY job in the URL, next to ?job=
_LANG = {
    ".py": "python",
    ".kt": "kotlin",
    ".swift": "swift",
    ".cc": "cpp",
    ".h": "cpp",
    ".md": "markdown",
    ".txt": "text",
}


def _lang(path: str) -> str:
    return next((v for k, v in _LANG.items() if path.endswith(k)), "text")


def show_kit(job: jobs.Job, *, key: str) -> None:
    """A finished DEPLOY job: the code per target and the zip."""
    res = DeployResult.from_dict((job.result or {})["deploy"])
    kit_sha = str((job.result or {}).get("kit_sha"))
    c1, c2 = st.columns([3, 1], vertical_alignment="center")
    c1.markdown(
        f":material/package_2: **Deploy kit for {md(job.model_name)}**: "
        f"{len(res.files)} files, {human_bytes(res.zip_size)}"
        + (f", TFLite Micro arena {res.arena_bytes:,} bytes" if res.arena_bytes else "")
        + (". Inputs and outputs are quantized; the code converts." if res.quantized_io else ".")
    )
    c2.download_button(
        "Download the kit (.zip)",
        data=lambda: jobs.read_artifact(kit_sha),
        file_name=str((job.result or {}).get("kit_name") or "deploy-kit.zip"),
        mime="application/zip",
        type="primary",
        icon=":material/folder_zip:",
        key=f"{key}.zip.{job.id}",
        on_click="ignore",
        width="stretch",
    )
    for w in res.warnings:
        st.warning(md(w), icon=":material/warning:")
    tabs = st.tabs(["README", *(TARGET_TITLES[t] for t in res.targets)])
    with tabs[0]:
        readme = res.file("README.md")
        if readme and readme.preview:
            st.code(readme.preview, language="markdown")
    for tab, target in zip(tabs[1:], res.targets):
        with tab:
            for f in res.files:
                if f.target != target:
                    continue
                st.markdown(f"`{f.path}` · {human_bytes(f.size)}")
                if f.preview is not None:
                    st.code(f.preview, language=_lang(f.path), line_numbers=f.path.endswith(".kt"))
                else:
                    st.caption("Too large to show here; it is in the zip.")


def show_deploy(source: jobs.Job, *, key: str) -> None:
    """Build (or show) the deploy kit of ``source``'s ``.tflite``."""
    found = tflite_of(source)
    if found is None:
        st.info("This job has no .tflite to deploy.", icon=":material/info:")
        return
    deploy_id = st.query_params.get(DEPLOY_PARAM)
    kit_job = job_view.load_job(str(deploy_id)) if deploy_id else None
    if kit_job is not None and kit_job.kind is jobs.JobKind.DEPLOY:
        if not job_view.show_unfinished(kit_job, key=f"{key}.kit", retry=False):
            show_kit(kit_job, key=key)
        return
    st.caption(
        "Code for this model's own signature (names, shapes, dtypes, quantization), one "
        "folder per target, with a README for the model."
    )
    targets = st.multiselect(
        "Targets",
        list(TARGETS),
        default=list(TARGETS),
        format_func=lambda t: TARGET_TITLES[t],
        key=f"{key}.targets",
    )
    if st.button(
        "Build the deploy kit", key=f"{key}.go", icon=":material/package_2:", disabled=not targets
    ):
        sha, size, name = found
        try:
            new = submit_deploy(
                jobs.store(),
                jobs.ArtifactRef(sha, size, name),
                model_name=name,
                params=deploy_params(tuple(targets), origin_words(source)),
                user=current_user(),
            )
        except StudioError as e:
            show_error(e)
            return
        st.query_params[DEPLOY_PARAM] = new.id
        st.rerun()
