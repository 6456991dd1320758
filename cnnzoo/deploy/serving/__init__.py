"""`cnnzoo serve`: a trained run as an HTTP service (FastAPI on uvicorn), with dynamic batching.

predictor: the model and predict's preparation of inputs; request_inputs: request bodies to examples;
batching: concurrent requests gathered into one model call; metrics: the Prometheus counters;
app: the endpoints; server: uvicorn on a bound socket, graceful on SIGTERM."""
