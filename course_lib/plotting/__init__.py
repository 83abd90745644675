"""Figures of the lectures, grouped by the lecture that introduces them.

Every function draws into ``ax`` (or ``axes``) when given one, so the same picture can
live in a notebook cell or inside a widget, and returns the ``Figure``. Without ``ax`` it
opens a new pyplot figure, which the notebook's inline backend shows when the cell ends.

Densities on a grid are evaluated without gradients; a 1D model is anything with
``log_prob`` on batches of shape ``(batch, 1)``, such as ``NormalizingFlow(1, [...])``.
"""
from .common import *  # noqa: F401,F403
from .change_of_variables import *  # noqa: F401,F403
from .geometry import *  # noqa: F401,F403
from .composition import *  # noqa: F401,F403
from .coupling import *  # noqa: F401,F403
from .autoregressive import *  # noqa: F401,F403
from .glow import *  # noqa: F401,F403
from .kl import *  # noqa: F401,F403
from .continuity import *  # noqa: F401,F403
from .applications import *  # noqa: F401,F403
from .flow_matching import *  # noqa: F401,F403
from .continuous import *  # noqa: F401,F403
from .splines import *  # noqa: F401,F403

__all__ = ['DENSITY_STYLE', 'SAMPLE_STYLE', 'density_1d', 'model_dtype', 'plot_base_and_pushed', 'plot_density_2d', 'plot_equal_mass', 'plot_pushed_density', 'DET_CMAP', 'DET_NORM', 'FOLD_CMAP', 'animate_grid_deformation', 'image_area', 'plot_grid_deformation', 'plot_linear_map', 'plot_local_linearisation', 'plot_pushed_gaussian', 'plot_pushforward', 'polygon_area', 'square_boundary', 'animate_layers', 'flow_stages', 'log_mass_on_window', 'plot_model_and_target', 'plot_bounded_log_scale', 'plot_flow_stages', 'plot_jacobian_matrix', 'DEPENDENCY_CMAP', 'animate_sequential_passes', 'mask_paths', 'plot_autoregressive_timings', 'plot_dependency', 'plot_made_network', 'sequential_passes', 'BLOCK_COLOURS', 'animate_squeeze', 'image_grid', 'multiscale_levels', 'plot_change_maps', 'plot_channel_mixing', 'plot_images', 'plot_level_resampling', 'plot_squeeze', 'resample_level', 'squeeze_positions', 'three_channel_pattern', 'SampleSnapshots', 'animate_snapshots', 'plot_gaussian_entropy', 'plot_importance_weights', 'plot_target_and_fits', 'EULER_STEPS', 'MovingDensity', 'SPIRAL', 'SPIRAL_MATRIX', 'SWIRL', 'animate_moving_density', 'euler_path', 'gaussian_flux', 'plot_density_on_grid', 'plot_euler', 'plot_flux_box', 'plot_linear_field_1d', 'spiral_field', 'swirl_field', 'ANOMALY_STYLE', 'NORMAL_STYLE', 'animate_threshold_sweep', 'plot_completions', 'plot_posteriors', 'plot_ranked_images', 'plot_roc', 'plot_score_histograms', 'plot_threshold', 'threshold_summary', 'TimedLoss', 'plot_field_over_time', 'plot_solver_steps', 'plot_training_comparison', 'solve_field', 'HUTCHINSON_COLOURS', 'TRACKED_COLOURS', 'animate_trajectories', 'backprop_memory', 'hutchinson_variance_theory', 'plot_backprop_memory', 'plot_hutchinson_variance', 'plot_log_density_paths', 'plot_trajectories', 'saved_tensor_bytes', 'animate_cobweb', 'fixed_point_iterates', 'plot_architecture_costs', 'plot_residual_fold', 'plot_series_convergence', 'plot_spline', 'sine_branch_1d', 'sine_branch_2d', 'spline_knots']
