"""Deployment: the Kubernetes manifests of a sweep (``nbft k8s render``).

The manifests themselves are kustomize bases and overlays under ``k8s/``; this package
validates a sweep file, makes it self-contained for the cluster and runs kustomize.
"""

from nonbinary_ft.deploy.render import (
    RenderedSweep,
    RenderError,
    default_k8s_dir,
    list_overlays,
    render_sweep,
)

__all__ = ["RenderError", "RenderedSweep", "default_k8s_dir", "list_overlays", "render_sweep"]
