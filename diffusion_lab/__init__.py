"""diffusion-lab: BERT's masked-language-model loss is one step of a text diffusion model."""
