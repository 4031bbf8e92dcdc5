// Builds a two-head model with the public API and trains a few steps on the
// embedded synthetic data; exits 0 only if the loss went down.
#include <ladon/config.hpp>
#include <ladon/training.hpp>

#include <cstdio>

int main() {
    ladon::ModelBuilder builder(1, 24, 24);
    builder.trunk().conv2d(8, 3, 1, 1).relu().max_pool2d(2).flatten().dense(32).relu();
    builder.head("shape", ladon::Loss::softmax_cross_entropy).dense(4);
    builder.head("box", ladon::Loss::smooth_l1).dense(4);
    ladon::TrainerOptions options;
    options.batch_size = 32;
    options.epochs = 2;
    options.max_steps = 60;
    const auto train = ladon::make_synthetic_dataset({1, 1024, 24});
    ladon::Trainer trainer(builder.build(), options);
    const auto reports = trainer.fit(*train, nullptr);
    const double first = reports.front().train[0].loss, last = reports.back().train[0].loss;
    std::printf("consumer: shape loss %.4f -> %.4f over %lld steps\n", first, last,
                static_cast<long long>(reports.back().steps));
    return last < first ? 0 : 1;
}
