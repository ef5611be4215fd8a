# Colab's kernel imports google.colab at start-up; the Colab-like job's stub does the same.
import google.colab  # noqa: F401
