// Fixture for the layering check's own test: a Raft header that reaches for a clock.
#pragma once
#include <chrono>
