import CHeron

/// Base of the optimizers: a list of parameters and `zeroGrad()`.
public class Optimizer {
    public let params: [Tensor]
    init(_ params: [Tensor]) { self.params = params }

    /// Clears the parameters' gradients (PyTorch's set_to_none).
    public func zeroGrad() throws { for p in params { try p.setGrad(nil) } }

    /// The parameters that have a gradient, with their gradients.
    func withGrads() -> [(Tensor, Tensor)] { params.compactMap { p in p.grad.map { (p, $0) } } }
}

/// Stochastic gradient descent with PyTorch's rule, one fused `sgd_step_` per step:
/// g = grad (+ weight_decay * p); buf = g (first step) or momentum * buf + (1 - dampening) * g;
/// g = g + momentum * buf (nesterov) or buf; p -= lr * g.
public final class SGD: Optimizer {
    public var lr: Double
    public let momentum, dampening, weightDecay: Double
    public let nesterov, maximize: Bool
    private var buffers: [ObjectIdentifier: Tensor] = [:]

    public init(_ params: [Tensor], lr: Double, momentum: Double = 0, dampening: Double = 0, weightDecay: Double = 0,
                nesterov: Bool = false, maximize: Bool = false) throws {
        if lr < 0 { throw HeronError.argument("SGD: invalid learning rate \(lr)") }
        if momentum < 0 { throw HeronError.argument("SGD: invalid momentum \(momentum)") }
        if weightDecay < 0 { throw HeronError.argument("SGD: invalid weight_decay \(weightDecay)") }
        if nesterov && (momentum <= 0 || dampening != 0) {
            throw HeronError.argument("SGD: Nesterov momentum requires a momentum and zero dampening")
        }
        self.lr = lr; self.momentum = momentum; self.dampening = dampening; self.weightDecay = weightDecay
        self.nesterov = nesterov; self.maximize = maximize
        super.init(params)
    }

    /// One update of every parameter that has a gradient.
    public func step() throws {
        let pg = withGrads()
        if pg.isEmpty { return }
        try Heron.noGrad {
            func run(_ items: [(Tensor, Tensor)], first: Bool) throws {
                if items.isEmpty { return }
                var ts = items.map { $0.0 } + items.map { $0.1 }
                if momentum != 0 { ts += items.map { buffers[ObjectIdentifier($0.0)]! } }
                try Heron.sgdStep_(ts, lr: lr, momentum: momentum, dampening: dampening, weightDecay: weightDecay,
                                   nesterov: nesterov, maximize: maximize, firstStep: first)
            }
            if momentum == 0 { return try run(pg, first: false) }
            let old = pg.filter { buffers[ObjectIdentifier($0.0)] != nil }
            let new = pg.filter { buffers[ObjectIdentifier($0.0)] == nil }
            for (p, _) in new { buffers[ObjectIdentifier(p)] = try Heron.zerosLike(p) }
            try run(old, first: false)
            try run(new, first: true)
        }
    }
}

/// Adam (AdamW with `decoupledWeightDecay`) with PyTorch's rule, one fused `adam_step_` per step count.
public final class Adam: Optimizer {
    public var lr: Double
    public let beta1, beta2, eps, weightDecay: Double
    public let amsgrad, maximize, decoupledWeightDecay: Bool
    private struct State { var step: Int; let expAvg, expAvgSq: Tensor; let maxExpAvgSq: Tensor? }
    private var state: [ObjectIdentifier: State] = [:]

    public init(_ params: [Tensor], lr: Double = 1e-3, betas: (Double, Double) = (0.9, 0.999), eps: Double = 1e-8,
                weightDecay: Double = 0, amsgrad: Bool = false, maximize: Bool = false,
                decoupledWeightDecay: Bool = false) throws {
        if lr < 0 { throw HeronError.argument("Adam: invalid learning rate \(lr)") }
        if eps < 0 { throw HeronError.argument("Adam: invalid epsilon \(eps)") }
        if !(0 <= betas.0 && betas.0 < 1) { throw HeronError.argument("Adam: invalid beta at index 0: \(betas.0)") }
        if !(0 <= betas.1 && betas.1 < 1) { throw HeronError.argument("Adam: invalid beta at index 1: \(betas.1)") }
        if weightDecay < 0 { throw HeronError.argument("Adam: invalid weight_decay \(weightDecay)") }
        self.lr = lr; self.beta1 = betas.0; self.beta2 = betas.1; self.eps = eps; self.weightDecay = weightDecay
        self.amsgrad = amsgrad; self.maximize = maximize; self.decoupledWeightDecay = decoupledWeightDecay
        super.init(params)
    }

    /// One update of every parameter that has a gradient.
    public func step() throws {
        let pg = withGrads()
        if pg.isEmpty { return }
        try Heron.noGrad {
            for (p, _) in pg where state[ObjectIdentifier(p)] == nil {
                state[ObjectIdentifier(p)] = State(step: 0, expAvg: try Heron.zerosLike(p), expAvgSq: try Heron.zerosLike(p),
                                                   maxExpAvgSq: amsgrad ? try Heron.zerosLike(p) : nil)
            }
            var byStep: [Int: [(Tensor, Tensor)]] = [:]
            for item in pg {
                let id = ObjectIdentifier(item.0)
                state[id]!.step += 1
                byStep[state[id]!.step, default: []].append(item)
            }
            for step in byStep.keys.sorted() {
                let items = byStep[step]!
                let sts = items.map { state[ObjectIdentifier($0.0)]! }
                var ts = items.map { $0.0 } + items.map { $0.1 } + sts.map { $0.expAvg } + sts.map { $0.expAvgSq }
                if amsgrad { ts += sts.map { $0.maxExpAvgSq! } }
                try Heron.adamStep_(ts, lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
                                    amsgrad: amsgrad, maximize: maximize, step: step,
                                    decoupledWeightDecay: decoupledWeightDecay)
            }
        }
    }
}
