// A C face for OpenCV's MOG2 that passes a learning rate, which gocv v0.32's Apply does not.
#ifndef VIGIL_MOG2_H
#define VIGIL_MOG2_H

#ifdef __cplusplus
extern "C" {
#endif

void *vigil_mog2_new(int history, double var_threshold);
// src and dst are cv::Mat pointers, as gocv's Mat.Ptr gives them.
void vigil_mog2_apply(void *mog, void *src, void *dst, double learning_rate);
void vigil_mog2_free(void *mog);

#ifdef __cplusplus
}
#endif

#endif
