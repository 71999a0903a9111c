# HRNet-W48 top-down heatmap model for COCO-WholeBody (133 keypoints), input
# 384x288 (h x w), DARK decoding (MSRAHeatmap codec with unbiased=True) and
# flip test, exactly the config shipped inside the mmpose package.
# Weights: hrnet_w48_coco_wholebody_384x288_dark-f5726563_20200918.pth
# (`make weights`; an mmpose 0.x file, whose keys mmpose 1.x converts on load).
_base_ = ('mmpose::wholebody_2d_keypoint/topdown_heatmap/coco-wholebody/'
          'td-hm_hrnet-w48_dark-8xb32-210e_coco-wholebody-384x288.py')

# Inference only: never fetch ImageNet weights for the backbone.
model = dict(backbone=dict(init_cfg=None))
