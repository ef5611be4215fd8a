"""A stand-in for Colab's ``google.colab`` module (the Colab-like CI job, tests/colab/).

The book's code only asks whether it runs on Colab (``"google.colab" in sys.modules``): the
install cell then installs the library, and the widgets link in the kernel. Colab imports the
module when its kernel starts; ``startup/00-google-colab.py`` does the same here.
"""

IN_COLAB_STUB = True
