"""D3PM's transition matrices drawn as matrices: uniform, absorbing and BERT's hybrid."""

from __future__ import annotations

from .. import noise


def transition_matrices(rate: float = 0.15, tokens: str = "abcde", kinds=noise.TRANSITIONS):
    """One heat map per kind of ``noise.transition_matrix(kind, rate, len(tokens))``: row = clean
    token $x$, column = corrupted token $z$, cell = $q(z \\mid x)$.  Returns the figure."""
    import matplotlib.pyplot as plt

    if not isinstance(tokens, str) or not tokens:
        raise ValueError(f"tokens must be a non-empty string, got {tokens!r}")
    labels = list(tokens) + ["[M]"]
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.6 * len(kinds), 3.4))
    axes = axes if len(kinds) > 1 else [axes]
    for ax, kind in zip(axes, kinds, strict=True):
        q = noise.transition_matrix(kind, rate, len(tokens))
        ax.imshow(q.numpy() ** 0.5, cmap="Blues", vmin=0, vmax=1)  # sqrt: small entries visible
        for i in range(len(labels)):
            for j in range(len(labels)):
                if q[i, j] > 0:
                    text = f"{q[i, j]:.2f}" if q[i, j] >= 0.01 else f"{q[i, j]:.3f}"
                    ax.text(j, i, text.lstrip("0"), ha="center", va="center",
                            fontsize=7, color="white" if q[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), labels)
        ax.set(title=f"{kind} (rate {rate:g})", xlabel="corrupted token $z$",
               ylabel="clean token $x$")
        ax.grid(False)
    fig.tight_layout()
    return fig
