#include <opencv2/video.hpp>

#include "mog2.h"

typedef cv::Ptr<cv::BackgroundSubtractorMOG2> MOG2;

void *vigil_mog2_new(int history, double var_threshold) {
    // Shadow detection is off: it costs time, and a moving shadow belongs to something moving.
    return new MOG2(cv::createBackgroundSubtractorMOG2(history, var_threshold, false));
}

void vigil_mog2_apply(void *mog, void *src, void *dst, double learning_rate) {
    (*static_cast<MOG2 *>(mog))->apply(*static_cast<cv::Mat *>(src), *static_cast<cv::Mat *>(dst), learning_rate);
}

void vigil_mog2_free(void *mog) {
    delete static_cast<MOG2 *>(mog);
}
