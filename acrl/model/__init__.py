"""The maths and the model: returns, action distributions, networks, observation encoders, the
actor-critic policy, running normalization statistics and the flat parameter vector."""
