"""What the web process, the Celery worker and training share: decoding, preprocessing, the model card, LiteRT.

Depends on requirements.txt only (NumPy, Pillow, pillow-heif, LiteRT): never TensorFlow, Keras, scikit-learn
or tqdm (tests/lesion_model/test_import_boundary.py checks it). Nothing is imported here, so importing one
module costs only that module.
"""
